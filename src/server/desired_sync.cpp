// desired_sync(): which desired messages a reconnecting device gets
// (docs/PROTOCOL.md 9.2). Shared by every engine, so the file store and Redis
// answer one hello the same way.
#include <cstddef>

#include "tether/server/session_engine.h"

namespace tether::server {

std::vector<DesiredChange> desired_sync(std::uint64_t applied, std::uint64_t current_version,
                                        const std::string& current_document,
                                        const std::vector<DesiredChange>& increments) {
    std::vector<DesiredChange> out;
    if (current_version == 0 || applied == current_version) {
        return out;  // no document at all (the device keeps its own), or up to date
    }
    const DesiredChange snapshot{current_version, true, current_document};
    if (applied == 0 || applied > current_version) {
        // Nothing applied yet, or a device newer than this store (restored
        // from a backup): the server's document replaces the device's.
        out.push_back(snapshot);
        return out;
    }
    // Increments only when every one of applied+1..current is held, in
    // order, and together they are smaller than the snapshot.
    std::size_t first = 0;
    while (first < increments.size() && increments[first].version <= applied) {
        ++first;
    }
    std::size_t total = 0;
    std::uint64_t expect = applied + 1;
    for (std::size_t i = first; i < increments.size() && expect <= current_version; ++i) {
        if (increments[i].version != expect || increments[i].snapshot) {
            break;
        }
        total += increments[i].document.size();
        ++expect;
    }
    if (expect != current_version + 1 || total >= current_document.size()) {
        out.push_back(snapshot);
        return out;
    }
    out.assign(increments.begin() + static_cast<std::ptrdiff_t>(first),
               increments.begin() + static_cast<std::ptrdiff_t>(first) +
                   static_cast<std::ptrdiff_t>(current_version - applied));
    return out;
}

}  // namespace tether::server

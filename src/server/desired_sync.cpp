// SPDX-License-Identifier: MIT
// desired_sync(): which desired messages a reconnecting device gets
// (docs/PROTOCOL.md 9.2). Shared by every engine, so the file store and Redis
// answer one hello the same way.
#include <cstddef>

#include "tether/server/session_engine.h"

namespace tether::server {
namespace {

// The bytes one desired message takes on the wire: its JSON text
// (net::v1::write_desired's) in a server-to-client WebSocket frame, whose
// header is 2 bytes below 126 payload bytes and 4 up to 65535. Increments
// and the snapshot are compared by these, not by their documents alone: ten
// small patches each pay ~60 bytes of message around them.
std::size_t wire_size(std::uint64_t version, bool snapshot, std::size_t document_size) {
    std::size_t digits = 1;
    for (std::uint64_t v = version; v >= 10; v /= 10) {
        ++digits;
    }
    // {"type":"desired","version":,"snapshot":false,"patch":} is 55 bytes,
    // the snapshot's ...true,"state":} 54.
    const std::size_t text = (snapshot ? 54 : 55) + digits + document_size;
    return text + (text < 126 ? 2 : text < 65536 ? 4 : 10);
}

}  // namespace

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
    // order, and together they take fewer bytes on the wire than the snapshot.
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
        total += wire_size(increments[i].version, false, increments[i].document.size());
        ++expect;
    }
    if (expect != current_version + 1 ||
        total >= wire_size(current_version, true, current_document.size())) {
        out.push_back(snapshot);
        return out;
    }
    out.assign(increments.begin() + static_cast<std::ptrdiff_t>(first),
               increments.begin() + static_cast<std::ptrdiff_t>(first) +
                   static_cast<std::ptrdiff_t>(current_version - applied));
    return out;
}

}  // namespace tether::server

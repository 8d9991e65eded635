// SPDX-License-Identifier: MIT
#include "support/transport_wait.h"

#include <poll.h>

#include "support/openssl_server.h"

namespace tether::test {

bool wait_ready(const Transport& transport, bool want_read, bool want_write, int timeout_ms) {
    const PollInterest interest = transport.interest(want_read, want_write);
    pollfd entry = {transport.fd(), 0, 0};
    entry.events =
        static_cast<short>((interest.read ? POLLIN : 0) | (interest.write ? POLLOUT : 0));
    return ::poll(&entry, 1, timeout_ms) > 0;
}

IoResult establish_within(Transport& transport, int timeout_ms) {
    const std::int64_t deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        const IoResult result = transport.establish();
        if (result.status != IoStatus::kWouldBlock) {
            return result;
        }
        const std::int64_t left = deadline - monotonic_ms();
        if (left <= 0 || !wait_ready(transport, false, false, static_cast<int>(left))) {
            return IoResult::failed(TransportError::kTimedOut);
        }
    }
}

bool write_all(Transport& transport, const std::string& data, int timeout_ms) {
    const std::int64_t deadline = monotonic_ms() + timeout_ms;
    std::size_t done = 0;
    while (done < data.size()) {
        const IoResult result = transport.write(
            reinterpret_cast<const std::uint8_t*>(data.data()) + done, data.size() - done);
        if (result.status == IoStatus::kOk) {
            done += result.bytes;
            continue;
        }
        const std::int64_t left = deadline - monotonic_ms();
        if (result.status != IoStatus::kWouldBlock || left <= 0 ||
            !wait_ready(transport, false, true, static_cast<int>(left))) {
            return false;
        }
    }
    return true;
}

std::string read_up_to(Transport& transport, std::size_t size, int timeout_ms, IoResult* last) {
    const std::int64_t deadline = monotonic_ms() + timeout_ms;
    std::string received;
    IoResult result = IoResult::ok(0);
    while (received.size() < size) {
        std::uint8_t buffer[4096];
        const std::size_t want =
            size - received.size() < sizeof buffer ? size - received.size() : sizeof buffer;
        result = transport.read(buffer, want);
        if (result.status == IoStatus::kOk) {
            received.append(reinterpret_cast<const char*>(buffer), result.bytes);
            continue;
        }
        const std::int64_t left = deadline - monotonic_ms();
        if (result.status != IoStatus::kWouldBlock || left <= 0 ||
            !wait_ready(transport, true, false, static_cast<int>(left))) {
            break;
        }
    }
    if (last != nullptr) {
        *last = result;
    }
    return received;
}

}  // namespace tether::test

// SPDX-License-Identifier: MIT
#include "tether/port/poll_loop.h"

#include <time.h>

namespace tether::port {

TimeMs monotonic_now() {
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    // Truncation to 32 bits is intended: the core compares times by wrapping difference.
    const std::uint64_t ms = static_cast<std::uint64_t>(now.tv_sec) * 1000u +
                             static_cast<std::uint64_t>(now.tv_nsec) / 1000000u;
    return static_cast<TimeMs>(ms);
}

PollLoop::PollLoop(Pollable** clients, std::size_t client_capacity, struct pollfd* fds,
                   std::size_t fd_capacity)
    : clients_(clients), client_capacity_(client_capacity), fds_(fds), fd_capacity_(fd_capacity) {}

bool PollLoop::add(Pollable* client) {
    if (client_count_ == client_capacity_) {
        return false;
    }
    clients_[client_count_++] = client;
    return true;
}

bool PollLoop::watch(int fd, bool read, bool write, FdWatcher* watcher) {
    for (std::size_t i = 0; i < watch_count_; ++i) {
        if (watches_[i].fd == fd) {
            watches_[i] = Watch{fd, read, write, watcher};
            return true;
        }
    }
    if (watch_count_ == kMaxWatches) {
        return false;
    }
    watches_[watch_count_++] = Watch{fd, read, write, watcher};
    return true;
}

void PollLoop::unwatch(int fd) {
    for (std::size_t i = 0; i < watch_count_; ++i) {
        if (watches_[i].fd == fd) {
            watches_[i] = watches_[--watch_count_];
            return;
        }
    }
}

int PollLoop::run_once(std::uint32_t max_wait_ms) {
    TimeMs now = monotonic_now();
    std::uint32_t wait_ms = max_wait_ms;
    std::size_t count = 0;

    for (std::size_t w = 0; w < watch_count_ && count < fd_capacity_; ++w) {
        short events = 0;
        events = static_cast<short>(events | (watches_[w].read ? POLLIN : 0));
        events = static_cast<short>(events | (watches_[w].write ? POLLOUT : 0));
        fds_[count++] = pollfd{watches_[w].fd, events, 0};
    }
    const std::size_t first_client_fd = count;
    for (std::size_t c = 0; c < client_count_; ++c) {
        Pollable& client = *clients_[c];
        PollRequest requests[Pollable::kMaxPollRequests];
        const std::size_t n = client.poll_requests(requests, Pollable::kMaxPollRequests);
        for (std::size_t r = 0; r < n && count < fd_capacity_; ++r) {
            short events = 0;
            events = static_cast<short>(events | (requests[r].read ? POLLIN : 0));
            events = static_cast<short>(events | (requests[r].write ? POLLOUT : 0));
            fds_[count++] = pollfd{requests[r].fd, events, 0};
        }
        TimeMs at = 0;
        if (client.next_deadline(&at)) {
            const std::uint32_t until = time_until(now, at);
            wait_ms = until < wait_ms ? until : wait_ms;
        }
        if (client.has_buffered_input()) {
            wait_ms = 0;  // TLS holds decrypted bytes that poll() cannot see
        }
    }

    const int timeout = wait_ms > 0x7FFFFFFFu ? 0x7FFFFFFF : static_cast<int>(wait_ms);
    const int ready = ::poll(fds_, static_cast<nfds_t>(count), timeout);
    ++polls_;
    now = monotonic_now();

    if (ready > 0) {
        for (std::size_t i = 0; i < first_client_fd; ++i) {
            const short revents = fds_[i].revents;
            if (revents == 0) {
                continue;
            }
            // The watch list may change inside a callback; find it by fd.
            for (std::size_t w = 0; w < watch_count_; ++w) {
                if (watches_[w].fd == fds_[i].fd) {
                    const bool readable = (revents & (POLLIN | POLLHUP | POLLERR)) != 0;
                    const bool writable = (revents & (POLLOUT | POLLERR)) != 0;
                    watches_[w].watcher->on_ready(fds_[i].fd, readable, writable, now);
                    break;
                }
            }
        }
    }
    // Service every client: its own calls find out what is ready without
    // blocking, and its timers need checking anyway.
    for (std::size_t c = 0; c < client_count_; ++c) {
        clients_[c]->service(now);
    }
    if (ready < 0) {
        return -1;
    }
    return ready;
}

}  // namespace tether::port

// SPDX-License-Identifier: MIT
// The one poll() loop that drives every client and any other descriptor an
// application watches (standard input, a signal pipe, a local socket).
//
// Each iteration: collect what every client wants polled, wait in poll() no
// longer than the nearest deadline (and not at all while TLS holds decrypted
// bytes poll() cannot see), call the watchers of ready descriptors, then
// service every client. Memory for clients and descriptors is the caller's.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>

#include "tether/pollable.h"
#include "tether/time.h"

namespace tether::port {

/// Milliseconds from CLOCK_MONOTONIC, truncated to the core's wrapping TimeMs.
TimeMs monotonic_now();

/// Called when a watched descriptor is ready.
class FdWatcher {
  public:
    virtual ~FdWatcher() = default;
    virtual void on_ready(int fd, bool readable, bool writable, TimeMs now) = 0;
};

class PollLoop {
  public:
    static constexpr std::size_t kMaxWatches = 16;

    /// `clients` holds up to `client_capacity` pointers; `fds` needs room for
    /// client_capacity * Pollable::kMaxPollRequests + kMaxWatches entries.
    PollLoop(Pollable** clients, std::size_t client_capacity, struct pollfd* fds,
             std::size_t fd_capacity);

    /// A tether::Client, a tether::DurableLink or any other Pollable. False when full.
    bool add(Pollable* client);
    /// Watches `fd` (replacing an earlier watch of it). False when full.
    bool watch(int fd, bool read, bool write, FdWatcher* watcher);
    void unwatch(int fd);

    /// One iteration, waiting at most `max_wait_ms`. Returns the number of
    /// ready descriptors, 0 on timeout, or -1 when poll() was interrupted by
    /// a signal (the clients are serviced either way).
    int run_once(std::uint32_t max_wait_ms);

    std::size_t client_count() const { return client_count_; }
    /// poll() calls so far (for benchmarks: system calls per message).
    std::uint64_t polls() const { return polls_; }

  private:
    struct Watch {
        int fd;
        bool read;
        bool write;
        FdWatcher* watcher;
    };

    Pollable** clients_;
    std::size_t client_capacity_;
    std::size_t client_count_ = 0;
    struct pollfd* fds_;
    std::size_t fd_capacity_;
    Watch watches_[kMaxWatches] = {};
    std::size_t watch_count_ = 0;
    std::uint64_t polls_ = 0;
};

/// A PollLoop with its own storage for up to `Clients` Pollables.
template <std::size_t Clients>
class FixedPollLoop final : public PollLoop {
  public:
    FixedPollLoop() : PollLoop(clients_, Clients, fds_, sizeof fds_ / sizeof fds_[0]) {}
    explicit FixedPollLoop(Pollable* first) : FixedPollLoop() { (void)add(first); }

  private:
    Pollable* clients_[Clients] = {};
    struct pollfd fds_[Clients * Pollable::kMaxPollRequests + kMaxWatches] = {};
};

}  // namespace tether::port

// SPDX-License-Identifier: MIT
// A UNIX datagram socket any local process can write messages to:
//   echo '{"t":1}' | socat - UNIX-SENDTO:/run/tether/input.sock
// Each datagram is one message. Datagrams larger than the buffer are dropped
// whole (never truncated) and counted.
//
//   char buffer[4096];
//   DatagramInput input(buffer, sizeof buffer);
//   if (input.bind("/run/tether/input.sock") != Status::kOk) { ... }
//   loop.watch(input.fd(), true, false, &watcher);
//   ... when readable:
//   input.drain([&](const char* message, std::size_t size) { enqueue(message, size); });
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "tether/status.h"

namespace tether::daemon {

class DatagramInput {
  public:
    /// Messages of up to `capacity` bytes are received into `buffer`, which
    /// must outlive the input.
    DatagramInput(char* buffer, std::size_t capacity) : buffer_(buffer), capacity_(capacity) {}
    /// Closes the socket and removes its path.
    ~DatagramInput();
    DatagramInput(const DatagramInput&) = delete;
    DatagramInput& operator=(const DatagramInput&) = delete;

    /// Creates a non-blocking, close-on-exec datagram socket bound to `path`
    /// with permissions `mode`. A socket file left at `path` by an earlier
    /// run is removed first. Returns kOk; kInvalidArgument when the path is
    /// empty, too long for sockaddr_un, or names something other than a
    /// socket (it is left alone); kIoError when the socket cannot be created,
    /// bound or given its mode (errno tells why); kUnavailable when already bound.
    Status bind(const char* path, mode_t mode = 0660);

    /// The socket to poll for reading; -1 before bind().
    int fd() const { return fd_; }

    enum class Receive {
        kMessage,     ///< `*size` bytes of a message are in the buffer
        kOversize,    ///< a datagram larger than the buffer was dropped
        kEmpty,       ///< an empty datagram was dropped
        kWouldBlock,  ///< nothing pending
        kError,       ///< the socket failed (or is not bound); errno tells why
    };

    /// Takes one pending datagram without waiting.
    Receive receive(std::size_t* size);

    /// Passes every pending message, in arrival order, to
    /// `handler(const char* data, std::size_t size)` (the data is valid only
    /// during the call), stopping after `limit` messages so a flood cannot
    /// starve the loop. Returns the number of messages handled.
    template <typename Handler>
    std::size_t drain(Handler&& handler, std::size_t limit = SIZE_MAX) {
        std::size_t handled = 0;
        while (handled < limit) {
            std::size_t size = 0;
            const Receive result = receive(&size);
            if (result == Receive::kMessage) {
                handler(static_cast<const char*>(buffer_), size);
                ++handled;
            } else if (result != Receive::kOversize && result != Receive::kEmpty) {
                break;
            }
        }
        return handled;
    }

    std::uint64_t received() const { return received_; }
    std::uint64_t oversize() const { return oversize_; }
    /// The real length of the last datagram dropped as oversize (0 before any).
    std::size_t last_oversize_size() const { return last_oversize_size_; }
    std::uint64_t empty() const { return empty_; }

  private:
    char* buffer_;
    std::size_t capacity_;
    int fd_ = -1;
    char path_[108] = {};
    std::uint64_t received_ = 0;
    std::uint64_t oversize_ = 0;
    std::size_t last_oversize_size_ = 0;
    std::uint64_t empty_ = 0;
};

}  // namespace tether::daemon

// Hands each delivered downlink message to the device, in one of two ways:
//
// - Line mode: the message is written to a descriptor (standard output) as
//   one line, straight away. A consumer such as `tetherd | while read m; ...`
//   sees one message per line.
// - Command mode: a command is run per message through `/bin/sh -c` with the
//   message (and a newline) on its standard input. One command runs at a
//   time, in message order; messages arriving meanwhile wait in a bounded
//   queue. Nothing waits for the command: the loop calls tick() each
//   iteration (and polls pending_fd() for writing when it is not -1), and
//   should not sleep longer than a short interval while busy().
//
//   char queue[16384];
//   DownlinkOutput output("/usr/local/bin/on-downlink", queue, sizeof queue);
//   client callback:  (void)output.deliver(data, size);   // counted on failure
//   every iteration:  output.tick();  timeout = output.busy() ? 10 : idle;
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "tether/status.h"

namespace tether::daemon {

class DownlinkOutput {
  public:
    /// Line mode on `fd` (not closed by the output). A non-blocking `fd`
    /// that stays full is waited for at most `write_timeout_ms` per message.
    explicit DownlinkOutput(int fd, int write_timeout_ms = kLineWriteTimeoutMs)
        : line_fd_(fd), write_timeout_ms_(write_timeout_ms) {}
    /// Command mode: `command` (kept by pointer) runs per message; waiting
    /// messages are kept in `queue` (each takes its size + 4 bytes).
    DownlinkOutput(const char* command, char* queue, std::size_t queue_capacity)
        : command_(command), queue_(queue), queue_capacity_(queue_capacity) {}
    /// Kills a command still running (and whatever it started) and reaps it.
    ~DownlinkOutput();
    DownlinkOutput(const DownlinkOutput&) = delete;
    DownlinkOutput& operator=(const DownlinkOutput&) = delete;

    /// Line mode: writes the message and a newline; kOk, kInvalidArgument for
    /// a message containing '\n' (it would read as two lines; counted in
    /// rejected()), kIoError when the write fails or the descriptor stays
    /// unwritable for the write timeout (errno tells why).
    /// Command mode: queues the message and starts its command if none runs;
    /// kOk, kTooLarge when it can never fit the queue, kNoSpace when the queue
    /// is full (both dropped and counted in dropped()).
    Status deliver(const char* data, std::size_t size);

    /// Command mode: feeds the running command's input, reaps it when it has
    /// exited (counting its status) and starts the next queued message.
    /// Nothing in line mode.
    void tick();

    /// A command runs or messages wait for one.
    bool busy() const { return child_ > 0 || queue_used_ > 0; }
    /// The running command's input while bytes remain to be written to it
    /// (watch it for writing), else -1.
    int pending_fd() const { return stdin_fd_; }
    std::size_t queued() const { return queue_count_; }

    /// Messages written (line mode) or whose command exited with status 0.
    std::uint64_t delivered() const { return delivered_; }
    /// Commands that exited non-zero or were killed by a signal.
    std::uint64_t failed() const { return failed_; }
    /// Commands that could not be started (their messages are dropped).
    std::uint64_t spawn_failures() const { return spawn_failures_; }
    std::uint64_t dropped() const { return dropped_; }
    std::uint64_t rejected() const { return rejected_; }
    /// The last reaped command's waitpid() status, -1 before the first.
    int last_status() const { return last_status_; }

    static constexpr int kLineWriteTimeoutMs = 1000;

  private:
    static constexpr std::size_t kHeader = 4;

    Status write_line(const char* data, std::size_t size);
    std::size_t front_size() const;
    void pop_front();
    bool start_front();
    void feed();
    void reap();

    int line_fd_ = -1;
    int write_timeout_ms_ = kLineWriteTimeoutMs;
    const char* command_ = nullptr;
    char* queue_ = nullptr;
    std::size_t queue_capacity_ = 0;
    // Entries are [size: 4 bytes, native order][message], oldest first; the
    // front one belongs to the running command until its input is written.
    std::size_t queue_used_ = 0;
    std::size_t queue_count_ = 0;
    pid_t child_ = -1;
    int stdin_fd_ = -1;
    // Bytes of the front message (plus its newline) written so far.
    std::size_t written_ = 0;
    std::uint64_t delivered_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t spawn_failures_ = 0;
    std::uint64_t dropped_ = 0;
    std::uint64_t rejected_ = 0;
    int last_status_ = -1;
};

}  // namespace tether::daemon

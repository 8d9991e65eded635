// SPDX-License-Identifier: MIT
// tetherd's control socket: a UNIX stream socket in the run directory
// (<run_dir>/control.sock, mode 0660: the daemon's user and group) that
// tetherctl talks to. One request line, one answer, then the daemon closes:
//
//   status\n            -> the status file's JSON (one line), built by the same
//                          code; only retry_in_ms is fresher: what is left of
//                          the wait, where the file has the delay chosen
//   reconnect\n         -> "ok reconnecting\n" (the backoff wait, or a give-up,
//                          is cut short) or "ok nothing to do: <state>\n"
//   flush [MS]\n        -> the spool is synced now; the answer comes once every
//                          message accepted before the request is acknowledged:
//                          "ok flushed seq=<S> acked=<A>\n", or after MS
//                          (default 10000, 1..600000) "error flush_timeout
//                          seq=<S> acked=<A>\n". S is the newest seq accepted
//                          when the request came (0: nothing to wait for).
//   anything else       -> "error bad_request\n"
//
// Bounded: a request line longer than kMaxRequest bytes is answered
// "error too_long"; more than kMaxClients at once, the newest gets
// "error busy"; a client that sends no complete line within
// kRequestTimeoutMs is closed. Nothing here waits: the listener and every
// client are non-blocking descriptors watched by the daemon's poll loop, and
// tick() expires deadlines. Teardown is deferred to tick(), so a callback
// never closes a descriptor the loop is still dispatching.
//
//   ControlSocket control(&handler);
//   if (control.bind("/run/tether/control.sock") != Status::kOk) { ... }
//   control.attach(&loop);
//   ... every iteration: control.tick(now); wait at most until next_deadline()
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "tether/port/poll_loop.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether::daemon {

struct ControlRequest {
    enum class Type : std::uint8_t { kStatus, kReconnect, kFlush, kInvalid };
    Type type = Type::kInvalid;
    std::uint32_t timeout_ms = 0;  ///< kFlush: how long to wait for the acknowledgement
};

inline constexpr std::uint32_t kDefaultFlushTimeoutMs = 10000;
inline constexpr std::uint32_t kMaxFlushTimeoutMs = 600000;

/// Parses one request line (without its '\n'; a trailing '\r' and spaces are
/// allowed). kInvalid for anything not listed above, including a flush
/// timeout of 0, above kMaxFlushTimeoutMs or not a decimal number.
ControlRequest parse_control_request(const char* line, std::size_t size);

enum class ControlProblem : std::uint8_t {
    kBadRequest,  ///< a line that is not a request
    kTooLong,     ///< no newline within kMaxRequest bytes
    kBusy,        ///< kMaxClients already connected
    kTimeout,     ///< no complete line within kRequestTimeoutMs
    kIoError,     ///< accept, read or write failed (errno in the detail)
    kFlushTimeout,
};
const char* to_string(ControlProblem problem);

/// What the control socket asks of the daemon.
class ControlHandler {
  public:
    virtual ~ControlHandler() = default;
    /// The status JSON, one line ending in '\n'.
    virtual std::string control_status() = 0;
    /// Connect now (DurableLink::connect_now); the answer line.
    virtual std::string control_reconnect() = 0;
    /// Syncs the spool; returns the newest seq accepted so far (0: none).
    virtual std::uint64_t control_flush_begin() = 0;
    /// True once everything up to `seq` is acknowledged (or nothing is left
    /// to send); *acked gets the highest acknowledged seq.
    virtual bool control_flushed(std::uint64_t seq, std::uint64_t* acked) = 0;
    /// A failure, for the log (the daemon says each kind once) and counters.
    virtual void control_problem(ControlProblem problem, const char* detail) = 0;
};

struct ControlCounters {
    std::uint64_t requests = 0;  ///< well-formed requests answered or being answered
    std::uint64_t bad_requests = 0;
    std::uint64_t too_long = 0;
    std::uint64_t busy = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t io_errors = 0;
    std::uint64_t flush_timeouts = 0;
    std::uint64_t refused() const { return bad_requests + too_long + busy + timeouts + io_errors; }
};

class ControlSocket final : public port::FdWatcher {
  public:
    static constexpr std::size_t kMaxClients = 4;
    static constexpr std::size_t kMaxRequest = 64;
    static constexpr std::uint32_t kRequestTimeoutMs = 2000;
    /// An answer the client does not read within this time is abandoned.
    static constexpr std::uint32_t kWriteTimeoutMs = 2000;

    explicit ControlSocket(ControlHandler* handler) : handler_(handler) {}
    /// Closes every client and the listener, and removes the path.
    ~ControlSocket() override;
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    /// Creates a non-blocking listening socket at `path` with `mode`. A
    /// socket left there by a crashed run is replaced. kOk; kInvalidArgument
    /// when the path is empty, longer than sockaddr_un holds, or names
    /// something other than a socket (left alone); kUnavailable when another
    /// process is listening there (a second daemon); kIoError otherwise
    /// (errno tells why).
    Status bind(const char* path, mode_t mode = 0660);
    /// Watches the listener in `loop` (and later each client).
    void attach(port::PollLoop* loop);

    /// Expires clients past their deadline, checks pending flushes and
    /// closes finished clients. Call once per loop iteration.
    void tick(TimeMs now);
    /// The nearest deadline (a client's timeout, or a flush to re-check soon).
    bool next_deadline(TimeMs* at) const;

    void on_ready(int fd, bool readable, bool writable, TimeMs now) override;

    int fd() const { return fd_; }
    const char* path() const { return path_; }
    std::size_t clients() const;
    const ControlCounters& counters() const { return counters_; }

  private:
    enum class Phase : std::uint8_t { kFree, kReading, kFlushing, kWriting, kDone };
    struct Client {
        int fd = -1;
        Phase phase = Phase::kFree;
        TimeMs deadline = 0;
        std::uint64_t flush_seq = 0;
        std::size_t length = 0;
        char request[kMaxRequest];
        std::string answer;
        std::size_t written = 0;
    };

    void accept_all(TimeMs now);
    void read_request(Client& client, TimeMs now);
    void handle(Client& client, const ControlRequest& request, TimeMs now);
    void answer(Client& client, std::string text, TimeMs now);
    void write_answer(Client& client, TimeMs now);
    void problem(ControlProblem kind, const char* detail);
    void close_client(Client& client);

    ControlHandler* handler_;
    port::PollLoop* loop_ = nullptr;
    int fd_ = -1;
    char path_[108] = {};
    Client clients_[kMaxClients];
    ControlCounters counters_;
};

}  // namespace tether::daemon

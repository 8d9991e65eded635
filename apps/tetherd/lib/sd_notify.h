// SPDX-License-Identifier: MIT
// Talking to systemd without libsystemd: the readiness protocol
// (sd_notify(3)), the service watchdog, and a hardware watchdog device.
//
// Notifier sends one datagram per message to the AF_UNIX socket named by
// $NOTIFY_SOCKET: a file system path ("/run/systemd/notify") or, when the
// name starts with '@', an abstract-namespace name. The socket is
// non-blocking and close-on-exec; a send that fails (systemd busy, socket
// gone) is counted and reported, never retried and never fatal, so the poll
// loop can not be stalled by its supervisor.
//
// The service watchdog: systemd sets $WATCHDOG_USEC (and $WATCHDOG_PID) when
// the unit has WatchdogSec=. The loop sends WATCHDOG=1 at half that interval,
// and only while it is healthy (WatchdogPolicy): a stuck loop stops pinging
// and systemd restarts the daemon.
//
// Example (in the poll loop):
//   tether::daemon::Notifier notifier;
//   (void)notifier.open_from_environment();  // kNotFound outside systemd
//   std::uint32_t interval_ms = 0;
//   (void)tether::daemon::watchdog_interval_from_environment(&interval_ms);
//   tether::daemon::WatchdogPolicy watchdog(interval_ms);
//   (void)notifier.ready();
//   for (;;) {
//       ... poll, service the client ...
//       completed_at = now;
//       if (watchdog.should_ping(now, completed_at)) {
//           (void)notifier.watchdog();
//           watchdog.pinged(now);
//       }
//   }
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>

#include "tether/status.h"
#include "tether/time.h"

namespace tether::daemon {

class Notifier {
  public:
    Notifier() = default;
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    /// Opens a socket for `address` ("/path" or "@abstract").
    /// kOk; kNotFound when `address` is null or empty (not run by systemd);
    /// kInvalidArgument when it is neither an absolute path nor '@' name, or
    /// does not fit a sockaddr_un; kIoError when socket() fails. Reopening
    /// closes the previous socket first.
    Status open(const char* address);
    /// open(getenv("NOTIFY_SOCKET")).
    Status open_from_environment();
    bool is_open() const { return fd_ >= 0; }

    /// Sends `message` as one datagram ("READY=1", "STATUS=online", ...; several
    /// assignments may be joined with '\n'). kOk; kUnavailable when not open
    /// (nothing is counted); kIoError when the send failed or would have
    /// blocked (counted in errors()).
    Status send(const char* message);
    Status ready() { return send("READY=1"); }
    Status watchdog() { return send("WATCHDOG=1"); }
    Status stopping() { return send("STOPPING=1"); }
    Status reloading() { return send("RELOADING=1"); }
    /// "STATUS=" + text (a one-line description shown by systemctl status);
    /// the text is cut at a newline and at 255 bytes.
    Status status(const char* text);

    std::uint64_t sent() const { return sent_; }
    std::uint64_t errors() const { return errors_; }

  private:
    void close_socket();

    int fd_ = -1;
    sockaddr_un address_{};
    socklen_t address_size_ = 0;
    std::uint64_t sent_ = 0;
    std::uint64_t errors_ = 0;
};

/// The longest watchdog interval reported: pinging more often than asked is
/// always safe, and it keeps deadlines far inside TimeMs's wrap-around range.
inline constexpr std::uint32_t kMaxWatchdogIntervalMs = 24u * 60u * 60u * 1000u;

/// Parses $WATCHDOG_USEC and $WATCHDOG_PID (either text may be null when the
/// variable is unset) for the process `own_pid`. kOk with *interval_ms set
/// (microseconds rounded down to milliseconds, at least 1, at most
/// kMaxWatchdogIntervalMs); kNotFound when usec_text is null or empty, or
/// pid_text names another process (the watchdog is not ours); kInvalidArgument
/// when either text is not a decimal number, or usec is 0. *interval_ms is 0
/// unless kOk.
Status parse_watchdog_interval(const char* usec_text, const char* pid_text, long own_pid,
                               std::uint32_t* interval_ms);
/// parse_watchdog_interval() over the environment and getpid().
Status watchdog_interval_from_environment(std::uint32_t* interval_ms);

/// Decides when the loop sends WATCHDOG=1: every half interval, and only while
/// the loop's last completed iteration is recent. A loop stuck in a call does
/// not complete iterations, so systemd's watchdog fires and restarts it.
class WatchdogPolicy {
  public:
    /// interval_ms: the service watchdog interval (0: disabled, never pings).
    /// stall_limit_ms: how long ago the last iteration may have completed for
    /// the loop to count as healthy (0: half the interval).
    explicit WatchdogPolicy(std::uint32_t interval_ms, std::uint32_t stall_limit_ms = 0);

    bool enabled() const { return interval_ms_ != 0; }
    std::uint32_t ping_every_ms() const { return interval_ms_ / 2u; }
    std::uint32_t stall_limit_ms() const { return stall_limit_ms_; }

    /// True when a ping is due at `now` (none sent yet, or half the interval
    /// has passed since the last) and the loop completed an iteration at
    /// `iteration_completed_at`, no more than the stall limit before `now`.
    bool should_ping(TimeMs now, TimeMs iteration_completed_at) const;
    /// Records a ping sent at `now`.
    void pinged(TimeMs now);
    /// When the next ping is due (for the poll timeout): `now` before the
    /// first ping. False when disabled (*at untouched).
    bool next_due(TimeMs now, TimeMs* at) const;

  private:
    std::uint32_t interval_ms_;
    std::uint32_t stall_limit_ms_;
    bool pinged_ = false;
    TimeMs last_ping_ = 0;
};

/// A /dev/watchdog-style device: opening it arms the timer, every write
/// rearms it, and writing 'V' just before closing (the "magic close") stops
/// it. The destructor closes without 'V', so a daemon that exits without
/// close_cleanly() leaves the timer running and the board resets unless the
/// daemon is restarted in time. Drivers built with nowayout ignore 'V'.
class HardwareWatchdog {
  public:
    HardwareWatchdog() = default;
    ~HardwareWatchdog();
    HardwareWatchdog(const HardwareWatchdog&) = delete;
    HardwareWatchdog& operator=(const HardwareWatchdog&) = delete;

    /// kOk; kIoError when `path` cannot be opened for writing (missing,
    /// permission denied, already open by another process); kInvalidArgument
    /// when path is null or empty. Reopening closes the previous device first
    /// (without 'V').
    Status open(const char* path);
    bool is_open() const { return fd_ >= 0; }
    /// Rearms the timer. kOk; kUnavailable when not open; kIoError when the
    /// write failed (counted in errors()).
    Status keep_alive();
    /// Writes 'V' and closes. kOk; kUnavailable when not open; kIoError when
    /// the write or close failed (the device is closed either way).
    Status close_cleanly();

    std::uint64_t errors() const { return errors_; }

  private:
    int fd_ = -1;
    std::uint64_t errors_ = 0;
};

}  // namespace tether::daemon

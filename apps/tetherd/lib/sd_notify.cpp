// SPDX-License-Identifier: MIT
#include "sd_notify.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace tether::daemon {
namespace {

// Parses a plain unsigned decimal number (no sign, no spaces, no suffix).
bool parse_decimal(const char* text, std::uint64_t* value) {
    if (text == nullptr || *text == '\0') {
        return false;
    }
    std::uint64_t result = 0;
    for (const char* p = text; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        const auto digit = static_cast<std::uint64_t>(*p - '0');
        if (result > (UINT64_MAX - digit) / 10u) {
            return false;
        }
        result = result * 10u + digit;
    }
    *value = result;
    return true;
}

}  // namespace

Notifier::~Notifier() {
    close_socket();
}

void Notifier::close_socket() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

Status Notifier::open(const char* address) {
    close_socket();
    if (address == nullptr || *address == '\0') {
        return Status::kNotFound;
    }
    const std::size_t length = std::strlen(address);
    // An abstract name is sent with a leading NUL in place of '@' and its
    // length alone delimits it: no terminating NUL is counted.
    const bool abstract = address[0] == '@';
    if ((!abstract && address[0] != '/') || (abstract && length < 2) ||
        length >= sizeof address_.sun_path) {
        return Status::kInvalidArgument;
    }
    address_ = sockaddr_un{};
    address_.sun_family = AF_UNIX;
    std::memcpy(address_.sun_path, address, length);
    if (abstract) {
        address_.sun_path[0] = '\0';
    }
    address_size_ =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length + (abstract ? 0u : 1u));
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd_ >= 0 ? Status::kOk : Status::kIoError;
}

Status Notifier::open_from_environment() {
    return open(std::getenv("NOTIFY_SOCKET"));
}

Status Notifier::send(const char* message) {
    if (fd_ < 0) {
        return Status::kUnavailable;
    }
    // Unconnected sendto: a socket re-created by a re-executed systemd is
    // found again by name on the next message.
    const std::size_t length = std::strlen(message);
    ssize_t result = 0;
    do {
        result = ::sendto(fd_, message, length, MSG_NOSIGNAL | MSG_DONTWAIT,
                          reinterpret_cast<const sockaddr*>(&address_), address_size_);
    } while (result < 0 && errno == EINTR);
    if (result < 0 || static_cast<std::size_t>(result) != length) {
        ++errors_;
        return Status::kIoError;
    }
    ++sent_;
    return Status::kOk;
}

Status Notifier::status(const char* text) {
    char message[7 + 256] = "STATUS=";
    std::size_t length = 7;
    for (const char* p = text; *p != '\0' && *p != '\n' && length < 7 + 255; ++p) {
        message[length++] = *p;
    }
    message[length] = '\0';
    return send(message);
}

Status parse_watchdog_interval(const char* usec_text, const char* pid_text, long own_pid,
                               std::uint32_t* interval_ms) {
    *interval_ms = 0;
    if (usec_text == nullptr || *usec_text == '\0') {
        return Status::kNotFound;
    }
    std::uint64_t usec = 0;
    if (!parse_decimal(usec_text, &usec) || usec == 0) {
        return Status::kInvalidArgument;
    }
    if (pid_text != nullptr && *pid_text != '\0') {
        std::uint64_t pid = 0;
        if (!parse_decimal(pid_text, &pid)) {
            return Status::kInvalidArgument;
        }
        if (own_pid < 0 || pid != static_cast<std::uint64_t>(own_pid)) {
            return Status::kNotFound;
        }
    }
    std::uint64_t ms = usec / 1000u;
    if (ms == 0) {
        ms = 1;
    }
    if (ms > kMaxWatchdogIntervalMs) {
        ms = kMaxWatchdogIntervalMs;
    }
    *interval_ms = static_cast<std::uint32_t>(ms);
    return Status::kOk;
}

Status watchdog_interval_from_environment(std::uint32_t* interval_ms) {
    return parse_watchdog_interval(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"),
                                   static_cast<long>(::getpid()), interval_ms);
}

WatchdogPolicy::WatchdogPolicy(std::uint32_t interval_ms, std::uint32_t stall_limit_ms)
    : interval_ms_(interval_ms > kMaxWatchdogIntervalMs ? kMaxWatchdogIntervalMs : interval_ms),
      stall_limit_ms_(stall_limit_ms != 0 ? stall_limit_ms : interval_ms_ / 2u) {}

bool WatchdogPolicy::should_ping(TimeMs now, TimeMs iteration_completed_at) const {
    if (!enabled()) {
        return false;
    }
    const bool due = !pinged_ || time_since(now, last_ping_) >= ping_every_ms();
    // An iteration stamped after `now` is a caller's clock mix-up: it shows
    // up as a huge age and counts as unhealthy, the safe side.
    const bool healthy = time_since(now, iteration_completed_at) <= stall_limit_ms_;
    return due && healthy;
}

void WatchdogPolicy::pinged(TimeMs now) {
    pinged_ = true;
    last_ping_ = now;
}

bool WatchdogPolicy::next_due(TimeMs now, TimeMs* at) const {
    if (!enabled()) {
        return false;
    }
    *at = pinged_ ? last_ping_ + ping_every_ms() : now;
    return true;
}

HardwareWatchdog::~HardwareWatchdog() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Status HardwareWatchdog::open(const char* path) {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (path == nullptr || *path == '\0') {
        return Status::kInvalidArgument;
    }
    fd_ = ::open(path, O_WRONLY | O_CLOEXEC);
    return fd_ >= 0 ? Status::kOk : Status::kIoError;
}

Status HardwareWatchdog::keep_alive() {
    if (fd_ < 0) {
        return Status::kUnavailable;
    }
    // Any byte rearms the timer; '.' is not 'V', so it does not arm the
    // magic close by accident.
    if (::write(fd_, ".", 1) != 1) {
        ++errors_;
        return Status::kIoError;
    }
    return Status::kOk;
}

Status HardwareWatchdog::close_cleanly() {
    if (fd_ < 0) {
        return Status::kUnavailable;
    }
    const bool written = ::write(fd_, "V", 1) == 1;
    const bool closed = ::close(fd_) == 0;
    fd_ = -1;
    if (!written || !closed) {
        ++errors_;
        return Status::kIoError;
    }
    return Status::kOk;
}

}  // namespace tether::daemon

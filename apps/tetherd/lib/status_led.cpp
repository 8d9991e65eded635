// SPDX-License-Identifier: MIT
#include "status_led.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

namespace tether::daemon {
namespace {

bool read_small_file(const std::string& path, std::string* out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    // Sysfs attributes are at most a page; the trigger list is the longest.
    char buffer[4096];
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (got < 0) {
        return false;
    }
    out->assign(buffer, static_cast<std::size_t>(got));
    return true;
}

// The trigger file lists every trigger, the active one in brackets:
// "none rc-feedback [mmc0] timer heartbeat".
bool offers_trigger(const std::string& list, const std::string& trigger) {
    std::size_t start = 0;
    while (start < list.size()) {
        std::size_t end = list.find_first_of(" \n", start);
        if (end == std::string::npos) {
            end = list.size();
        }
        std::string word = list.substr(start, end - start);
        if (word.size() > 2 && word.front() == '[' && word.back() == ']') {
            word = word.substr(1, word.size() - 2);
        }
        if (word == trigger) {
            return true;
        }
        start = end + 1;
    }
    return false;
}

}  // namespace

const char* to_string(LedPattern pattern) {
    switch (pattern) {
        case LedPattern::kOff:
            return "off";
        case LedPattern::kSolid:
            return "solid";
        case LedPattern::kBlinking:
            return "blinking";
    }
    return "unknown";
}

LedPattern led_pattern_for(LinkState state) {
    switch (state) {
        case LinkState::kOnline:
            return LedPattern::kSolid;
        case LinkState::kIdle:
        case LinkState::kGivenUp:
            return LedPattern::kOff;
        default:
            return LedPattern::kBlinking;
    }
}

StatusLed::StatusLed(StatusLedConfig config) : config_(std::move(config)) {}

Status StatusLed::open() {
    open_ = false;
    shown_ = false;
    software_blink_ = false;
    if (config_.name.empty() || config_.name.find('/') != std::string::npos) {
        return Status::kInvalidArgument;
    }
    directory_ = config_.root + "/" + config_.name;
    if (::access((directory_ + "/brightness").c_str(), W_OK) != 0) {
        return Status::kNotFound;
    }
    max_brightness_ = 1;
    std::string text;
    if (read_small_file(directory_ + "/max_brightness", &text)) {
        // strtoull, not strtoul: a 32-bit unsigned long saturates an
        // out-of-range value at 0xFFFFFFFF, which would pass the range check.
        const unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
        if (value > 0 && value <= 0xFFFFFFFFull) {
            max_brightness_ = static_cast<std::uint32_t>(value);
        }
    }
    timer_available_ =
        read_small_file(directory_ + "/trigger", &text) && offers_trigger(text, "timer");
    open_ = true;
    return Status::kOk;
}

bool StatusLed::write(const char* file, const std::string& value) {
    const std::string path = directory_ + "/" + file;
    const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t written = 0;
    do {
        written = ::write(fd, value.data(), value.size());
    } while (written < 0 && errno == EINTR);
    const bool closed = ::close(fd) == 0;
    return written == static_cast<ssize_t>(value.size()) && closed;
}

bool StatusLed::set_brightness(bool lit) {
    lit_ = lit;
    return write("brightness", lit ? std::to_string(max_brightness_) : "0");
}

Status StatusLed::show(LedPattern pattern, TimeMs now) {
    if (!open_) {
        return Status::kUnavailable;
    }
    if (shown_ && pattern == pattern_) {
        return Status::kOk;
    }
    pattern_ = pattern;
    software_blink_ = false;
    if (pattern == LedPattern::kBlinking && timer_available_) {
        // The timer trigger creates delay_on and delay_off when it is set,
        // so the trigger goes first.
        if (write("trigger", "timer") && write("delay_on", std::to_string(config_.blink_on_ms)) &&
            write("delay_off", std::to_string(config_.blink_off_ms))) {
            shown_ = true;
            return Status::kOk;
        }
        // The kernel refused the trigger (ledtrig-timer not loadable, say):
        // blink in software from now on.
        timer_available_ = false;
        ++errors_;
    }
    // "none" first: a trigger left active would override the brightness.
    bool ok = write("trigger", "none");
    if (pattern == LedPattern::kBlinking) {
        software_blink_ = true;
        next_toggle_ = now + config_.blink_on_ms;
    }
    ok = set_brightness(pattern != LedPattern::kOff) && ok;
    shown_ = ok;
    if (!ok) {
        ++errors_;
        return Status::kIoError;
    }
    return Status::kOk;
}

Status StatusLed::tick(TimeMs now) {
    if (!open_ || !software_blink_ || !time_reached(now, next_toggle_)) {
        return Status::kOk;
    }
    const bool lit = !lit_;
    next_toggle_ = now + (lit ? config_.blink_on_ms : config_.blink_off_ms);
    if (!set_brightness(lit)) {
        ++errors_;
        return Status::kIoError;
    }
    return Status::kOk;
}

bool StatusLed::next_deadline(TimeMs* at) const {
    if (!open_ || !software_blink_) {
        return false;
    }
    *at = next_toggle_;
    return true;
}

}  // namespace tether::daemon

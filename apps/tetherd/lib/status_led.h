// SPDX-License-Identifier: MIT
// The link state on an LED, through the kernel's LED class in sysfs
// (/sys/class/leds/NAME/{trigger,brightness,max_brightness,delay_on,delay_off}).
//
//   online                       solid: trigger "none", brightness max_brightness
//   connecting, waiting, closing blinking: trigger "timer" with delay_on/delay_off
//                                when the LED offers it, else brightness toggled
//                                by tick()
//   given up, idle (stopped)     off: trigger "none", brightness 0
//
// Files are written only when the pattern changes, so calling show() after
// every event is cheap. A write that fails is counted and reported; the LED
// is cosmetic and never stops the daemon. The root is configurable so tests
// run against a fake tree in a temporary directory.
//
// Example:
//   tether::daemon::StatusLed led({"/sys/class/leds", "led0", 250, 250});
//   if (led.open() == tether::Status::kOk) { ... }
//   on a state change: (void)led.show_state(event.state, now);
//   every loop iteration: (void)led.tick(now);  // poll until led.next_deadline()
#pragma once

#include <cstdint>
#include <string>

#include "tether/reconnect.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether::daemon {

enum class LedPattern : std::uint8_t { kOff, kSolid, kBlinking };

const char* to_string(LedPattern pattern);
/// The pattern that shows `state` (table above).
LedPattern led_pattern_for(LinkState state);

struct StatusLedConfig {
    std::string root = "/sys/class/leds";
    std::string name;  ///< the LED's directory under root ("led0", "ACT")
    std::uint32_t blink_on_ms = 250;
    std::uint32_t blink_off_ms = 250;
};

class StatusLed {
  public:
    explicit StatusLed(StatusLedConfig config);

    /// Looks the LED up: reads max_brightness (1 when unreadable or 0) and
    /// whether the trigger list offers "timer". kOk; kInvalidArgument when
    /// the name is empty or contains '/'; kNotFound when the LED has no
    /// writable brightness file. Until kOk, show() and tick() do nothing.
    Status open();
    bool is_open() const { return open_; }
    std::uint32_t max_brightness() const { return max_brightness_; }
    /// True when blinking is left to the kernel's timer trigger.
    bool hardware_blink() const { return timer_available_; }

    /// Shows `pattern` from `now` on. kOk (also when already shown);
    /// kUnavailable when not open; kIoError when a file write failed (counted
    /// in errors(); the next show() tries again). A refused "timer" trigger
    /// is not an error: blinking falls back to tick() (counted in errors()).
    Status show(LedPattern pattern, TimeMs now);
    Status show_state(LinkState state, TimeMs now) { return show(led_pattern_for(state), now); }
    LedPattern pattern() const { return pattern_; }

    /// Software blinking: toggles the brightness when its time has come.
    /// kOk (also when nothing was due), kIoError as for show().
    Status tick(TimeMs now);
    /// When tick() must run next; false when no software blinking is going on.
    bool next_deadline(TimeMs* at) const;

    std::uint64_t errors() const { return errors_; }

  private:
    bool write(const char* file, const std::string& value);
    bool set_brightness(bool lit);

    StatusLedConfig config_;
    std::string directory_;
    bool open_ = false;
    std::uint32_t max_brightness_ = 1;
    bool timer_available_ = false;
    bool shown_ = false;  // pattern_ has been written successfully
    LedPattern pattern_ = LedPattern::kOff;
    bool software_blink_ = false;
    bool lit_ = false;
    TimeMs next_toggle_ = 0;
    std::uint64_t errors_ = 0;
};

}  // namespace tether::daemon

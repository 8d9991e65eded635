// SPDX-License-Identifier: MIT
// AuthThrottle: how tether-server answers a source address that keeps
// failing authentication (docs/PROTOCOL.md section 1).
//
// Every upgrade answered 401 (token missing, unknown or expired) is a failure
// of its source address. Once an address has `max_failures` failures within
// `window_ms` (a window starts at its first failure), it is penalised for
// `penalty_ms`: its upgrades are answered 429 with Retry-After, without
// looking at their token, so guessing tokens costs a penalty per
// `max_failures` guesses. When the penalty is over the address starts afresh.
//
// The key is the address for IPv4 (and IPv4-mapped IPv6), and the /64 prefix
// for IPv6: one host commonly holds a whole /64, so counting single IPv6
// addresses would count nothing.
//
// At most `max_addresses` addresses are tracked; a new one beyond that evicts
// the one whose last failure is oldest. Entries whose window and penalty are
// over are dropped by prune(). No clock and no I/O: time comes in as `now`
// (tether::TimeMs, wrap-around safe), so the tests are exact.
//
// Example (the server's upgrade path):
//   AuthThrottle throttle(AuthThrottleConfig{});
//   const AuthThrottle::Verdict verdict = throttle.check(key, now);
//   if (verdict.throttled) { reply 429, Retry-After: verdict.retry_after_s }
//   else if (token is bad) { if (throttle.record_failure(key, now)) log "penalty starts"; reply 401
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

#include "tether/net/ip_address.h"
#include "tether/time.h"

namespace tether::server {

struct AuthThrottleConfig {
    /// Failures within window_ms that start a penalty. 0 turns the throttle off
    /// (check() always allows, record_failure() records nothing).
    std::uint32_t max_failures = 10;
    std::uint32_t window_ms = 10000;   ///< 1 .. one day
    std::uint32_t penalty_ms = 60000;  ///< 1 .. one day
    std::size_t max_addresses = 4096;  ///< >= 1
};

/// A source address as the throttle counts it (see the top of this file).
struct AddressKey {
    std::uint8_t bytes[16] = {};

    /// The key of `address`: IPv4 as itself, ::ffff:a.b.c.d as a.b.c.d, any
    /// other IPv6 address as its /64 prefix.
    static AddressKey of(const net::IpAddress& address);
};
bool operator==(const AddressKey& a, const AddressKey& b);

class AuthThrottle {
  public:
    /// `config` out of its documented ranges is clamped into them.
    explicit AuthThrottle(const AuthThrottleConfig& config = AuthThrottleConfig{});

    struct Verdict {
        bool throttled = false;
        std::uint32_t retry_after_ms = 0;  ///< until the penalty ends (when throttled)
        std::uint32_t retry_after_s = 0;   ///< the same, rounded up to whole seconds (>= 1)
    };

    /// Before an upgrade's token is looked at: throttled while the address
    /// is penalised. An address whose penalty is over starts afresh.
    Verdict check(const AddressKey& address, TimeMs now);

    /// An upgrade from `address` was answered 401. Returns true when this
    /// failure started the address's penalty (the caller logs it, once).
    bool record_failure(const AddressKey& address, TimeMs now);

    /// Drops the entries whose window and penalty are over (oldest first,
    /// stopping at the first live one). Call it now and then (the server:
    /// once per loop iteration) so that no entry outlives the wrap-around
    /// horizon of TimeMs.
    void prune(TimeMs now);

    /// Addresses tracked now, and how many were evicted to make room.
    std::size_t tracked() const { return entries_.size(); }
    std::uint64_t evictions() const { return evictions_; }
    const AuthThrottleConfig& config() const { return config_; }

  private:
    struct KeyHash {
        std::size_t operator()(const AddressKey& key) const;
    };
    struct Entry {
        TimeMs window_start = 0;
        TimeMs last_failure = 0;
        std::uint32_t failures = 0;
        bool penalised = false;
        TimeMs penalty_until = 0;
        std::list<AddressKey>::iterator age;  ///< its place in by_age_
    };
    using Map = std::unordered_map<AddressKey, Entry, KeyHash>;

    bool over(const Entry& entry, TimeMs now) const;
    void erase(Map::iterator found);

    AuthThrottleConfig config_;
    Map entries_;
    std::list<AddressKey> by_age_;  ///< oldest last failure first
    std::uint64_t evictions_ = 0;
};

}  // namespace tether::server

// SPDX-License-Identifier: MIT
#include "tether/server/auth_throttle.h"

#include <cstring>

namespace tether::server {
namespace {

constexpr std::uint32_t kOneDayMs = 24u * 60u * 60u * 1000u;

std::uint32_t clamp_ms(std::uint32_t ms) {
    return ms == 0 ? 1 : (ms > kOneDayMs ? kOneDayMs : ms);
}

bool is_v4_mapped(const std::uint8_t* bytes) {
    static const std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes, kPrefix, sizeof kPrefix) == 0;
}

}  // namespace

AddressKey AddressKey::of(const net::IpAddress& address) {
    // Byte 0 tells the forms apart: 4 for IPv4 (with the address in 1..4),
    // 6 for an IPv6 prefix (in 1..8).
    AddressKey key;
    if (address.family == net::kIpv4) {
        key.bytes[0] = net::kIpv4;
        std::memcpy(key.bytes + 1, address.bytes, 4);
    } else if (is_v4_mapped(address.bytes)) {
        key.bytes[0] = net::kIpv4;
        std::memcpy(key.bytes + 1, address.bytes + 12, 4);
    } else {
        key.bytes[0] = net::kIpv6;
        std::memcpy(key.bytes + 1, address.bytes, 8);
    }
    return key;
}

bool operator==(const AddressKey& a, const AddressKey& b) {
    return std::memcmp(a.bytes, b.bytes, sizeof a.bytes) == 0;
}

std::size_t AuthThrottle::KeyHash::operator()(const AddressKey& key) const {
    std::uint64_t hash = 14695981039346656037ull;  // FNV-1a
    for (std::uint8_t byte : key.bytes) {
        hash = (hash ^ byte) * 1099511628211ull;
    }
    return static_cast<std::size_t>(hash ^ (hash >> 32));
}

AuthThrottle::AuthThrottle(const AuthThrottleConfig& config) : config_(config) {
    config_.window_ms = clamp_ms(config_.window_ms);
    config_.penalty_ms = clamp_ms(config_.penalty_ms);
    if (config_.max_addresses == 0) {
        config_.max_addresses = 1;
    }
}

bool AuthThrottle::over(const Entry& entry, TimeMs now) const {
    return entry.penalised ? time_reached(now, entry.penalty_until)
                           : time_since(now, entry.window_start) >= config_.window_ms;
}

void AuthThrottle::erase(Map::iterator found) {
    by_age_.erase(found->second.age);
    entries_.erase(found);
}

AuthThrottle::Verdict AuthThrottle::check(const AddressKey& address, TimeMs now) {
    Verdict verdict;
    const auto found = entries_.find(address);
    if (found == entries_.end() || !found->second.penalised) {
        return verdict;
    }
    if (over(found->second, now)) {
        erase(found);
        return verdict;
    }
    verdict.throttled = true;
    verdict.retry_after_ms = time_until(now, found->second.penalty_until);
    verdict.retry_after_s = (verdict.retry_after_ms + 999u) / 1000u;
    if (verdict.retry_after_s == 0) {
        verdict.retry_after_s = 1;
    }
    return verdict;
}

bool AuthThrottle::record_failure(const AddressKey& address, TimeMs now) {
    if (config_.max_failures == 0) {
        return false;
    }
    auto found = entries_.find(address);
    if (found != entries_.end() && over(found->second, now)) {
        erase(found);
        found = entries_.end();
    }
    if (found == entries_.end()) {
        if (entries_.size() >= config_.max_addresses) {
            erase(entries_.find(by_age_.front()));
            ++evictions_;
        }
        Entry entry;
        entry.window_start = now;
        entry.age = by_age_.insert(by_age_.end(), address);
        found = entries_.emplace(address, entry).first;
    }
    Entry& entry = found->second;
    entry.last_failure = now;
    by_age_.splice(by_age_.end(), by_age_, entry.age);
    if (entry.penalised) {
        return false;  // a 401 while penalised: only if the caller did not check
    }
    ++entry.failures;
    if (entry.failures < config_.max_failures) {
        return false;
    }
    entry.penalised = true;
    entry.penalty_until = now + config_.penalty_ms;
    return true;
}

void AuthThrottle::prune(TimeMs now) {
    // by_age_ is ordered by last failure, and an entry is over at most
    // window_ms + penalty_ms after it: stop at the first one still live. A
    // younger entry that is already over waits for its turn (or for check()).
    while (!by_age_.empty()) {
        const auto found = entries_.find(by_age_.front());
        if (!over(found->second, now)) {
            return;
        }
        erase(found);
    }
}

}  // namespace tether::server

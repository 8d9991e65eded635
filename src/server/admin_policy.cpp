// SPDX-License-Identifier: MIT
#include "tether/server/admin_policy.h"

namespace tether::server {
namespace {

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_blank(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

// Compares without an early exit, so the time taken does not say how much of
// a guess was right (the length of the token is not a secret worth hiding).
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    unsigned char difference = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        difference = static_cast<unsigned char>(difference | (a[i] ^ b[i]));
    }
    return difference == 0;
}

}  // namespace

void format_admin_token(const std::uint8_t random[kAdminTokenRandomBytes],
                        char out[kGeneratedAdminTokenLength + 1]) {
    static const char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < kAdminTokenRandomBytes; ++i) {
        out[2 * i] = kHex[random[i] >> 4];
        out[2 * i + 1] = kHex[random[i] & 0x0f];
    }
    out[kGeneratedAdminTokenLength] = '\0';
}

bool is_valid_admin_token(std::string_view token) {
    if (token.size() < kMinAdminTokenLength || token.size() > kMaxAdminTokenLength) {
        return false;
    }
    for (char c : token) {
        if (c <= ' ' || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

bool admin_request_authorized(std::string_view header_block, std::string_view token) {
    if (token.empty()) {
        return false;
    }
    std::string_view value;
    bool found = false;
    std::size_t start = header_block.find("\r\n");  // skip the request line
    while (start != std::string_view::npos) {
        start += 2;
        const std::size_t end = header_block.find("\r\n", start);
        const std::string_view line = header_block.substr(start, end - start);
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos &&
            equal_ignoring_case(line.substr(0, colon), "authorization")) {
            if (found) {
                return false;  // two answers to one question: neither is trusted
            }
            found = true;
            value = trim(line.substr(colon + 1));
        }
        start = end;
    }
    constexpr std::string_view kScheme = "bearer";
    if (!found || value.size() <= kScheme.size() ||
        !equal_ignoring_case(value.substr(0, kScheme.size()), kScheme) ||
        !is_blank(value[kScheme.size()])) {
        return false;
    }
    return same_secret(trim(value.substr(kScheme.size())), token);
}

std::size_t admin_victim(const AdminSlot* slots, std::size_t count, TimeMs now) {
    std::size_t victim = kNoAdminVictim;
    std::uint32_t oldest = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint32_t age = time_since(now, slots[i].opened_at);
        if (slots[i].idle && (victim == kNoAdminVictim || age > oldest)) {
            victim = i;
            oldest = age;
        }
    }
    return victim;
}

}  // namespace tether::server

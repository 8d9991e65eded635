// SPDX-License-Identifier: MIT
#include "tether/server/tokens.h"

namespace tether::server {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

bool is_visible(char c) {
    return c > ' ' && c < 0x7f;
}

// Splits `line` into at most three fields (token, user, device). False on a
// malformed line.
bool parse_line(std::string_view line, std::string_view fields[3]) {
    std::size_t count = 0;
    std::size_t i = 0;
    while (i < line.size()) {
        if (is_blank(line[i])) {
            ++i;
            continue;
        }
        const std::size_t start = i;
        while (i < line.size() && !is_blank(line[i])) {
            if (!is_visible(line[i])) {
                return false;
            }
            ++i;
        }
        if (count == 3 || i - start > kMaxTokenLength) {
            return false;
        }
        fields[count++] = line.substr(start, i - start);
    }
    return true;
}

}  // namespace

const char* to_string(TokenCheck check) {
    switch (check) {
        case TokenCheck::kValid:
            return "valid";
        case TokenCheck::kUnknown:
            return "unknown";
        case TokenCheck::kExpired:
            return "expired";
    }
    return "unknown_check";
}

Status TokenStore::load_text(std::string_view text, std::size_t* bad_line) {
    std::map<std::string, Entry, std::less<>> loaded;
    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        std::size_t first = 0;
        while (first < line.size() && is_blank(line[first])) {
            ++first;
        }
        if (first == line.size() || line[first] == '#') {
            continue;
        }
        std::string_view fields[3];
        if (!parse_line(line, fields)) {
            if (bad_line != nullptr) {
                *bad_line = line_number;
            }
            return Status::kCorrupt;
        }
        loaded[std::string(fields[0])] =
            Entry{std::string(fields[1]), std::string(fields[2]), false};
        if (loaded.size() > kMaxTokens) {
            return Status::kNoSpace;
        }
    }
    tokens_ = std::move(loaded);
    return Status::kOk;
}

TokenCheck TokenStore::check(std::string_view token) const {
    const auto found = tokens_.find(token);
    if (found == tokens_.end()) {
        return TokenCheck::kUnknown;
    }
    return found->second.expired ? TokenCheck::kExpired : TokenCheck::kValid;
}

std::string TokenStore::user(std::string_view token) const {
    const auto found = tokens_.find(token);
    return found == tokens_.end() ? std::string() : found->second.user;
}

std::string TokenStore::device(std::string_view token) const {
    const auto found = tokens_.find(token);
    return found == tokens_.end() ? std::string() : found->second.device;
}

bool TokenStore::allows_device(std::string_view token, std::string_view device) const {
    const auto found = tokens_.find(token);
    return found != tokens_.end() &&
           (found->second.device.empty() || found->second.device == device);
}

bool TokenStore::expire(std::string_view token) {
    const auto found = tokens_.find(token);
    if (found == tokens_.end()) {
        return false;
    }
    found->second.expired = true;
    return true;
}

void TokenStore::expire_all() {
    for (auto& entry : tokens_) {
        entry.second.expired = true;
    }
}

}  // namespace tether::server

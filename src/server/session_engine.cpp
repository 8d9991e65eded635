// SPDX-License-Identifier: MIT
#include "tether/server/session_engine.h"

namespace tether::server {
namespace {

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

bool is_canonical_uuid(std::string_view text) {
    if (text.size() != kSessionIdLength) {
        return false;
    }
    for (std::size_t i = 0; i < kSessionIdLength; ++i) {
        const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_position ? text[i] != '-' : !is_hex(text[i])) {
            return false;
        }
    }
    return true;
}

bool session_key(std::string_view text, char out[kSessionIdLength + 1]) {
    if (!is_canonical_uuid(text)) {
        return false;
    }
    for (std::size_t i = 0; i < kSessionIdLength; ++i) {
        const char c = text[i];
        out[i] = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    out[kSessionIdLength] = '\0';
    return true;
}

const char* to_string(UplinkResult result) {
    switch (result) {
        case UplinkResult::kStored:
            return "stored";
        case UplinkResult::kDuplicate:
            return "duplicate";
        case UplinkResult::kStoredAfterUnreportedGap:
            return "stored_after_unreported_gap";
        case UplinkResult::kQueued:
            return "queued";
        case UplinkResult::kUnknownSession:
            return "unknown_session";
        case UplinkResult::kInvalidArgument:
            return "invalid_argument";
        case UplinkResult::kTooLarge:
            return "too_large";
        case UplinkResult::kIoError:
            return "io_error";
    }
    return "unknown";
}

const char* to_string(GapResult result) {
    switch (result) {
        case GapResult::kRecorded:
            return "recorded";
        case GapResult::kRecordedAfterUnreportedGap:
            return "recorded_after_unreported_gap";
        case GapResult::kIgnored:
            return "ignored";
        case GapResult::kQueued:
            return "queued";
        case GapResult::kUnknownSession:
            return "unknown_session";
        case GapResult::kInvalidArgument:
            return "invalid_argument";
        case GapResult::kIoError:
            return "io_error";
    }
    return "unknown";
}

}  // namespace tether::server

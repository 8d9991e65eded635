// SPDX-License-Identifier: MIT
#include "tether/status.h"

namespace tether {

const char* to_string(Status status) {
    switch (status) {
        case Status::kOk:
            return "ok";
        case Status::kInvalidArgument:
            return "invalid_argument";
        case Status::kNoSpace:
            return "no_space";
        case Status::kTooLarge:
            return "too_large";
        case Status::kEmpty:
            return "empty";
        case Status::kNotFound:
            return "not_found";
        case Status::kCorrupt:
            return "corrupt";
        case Status::kIoError:
            return "io_error";
        case Status::kUnavailable:
            return "unavailable";
        case Status::kConflict:
            return "conflict";
    }
    return "unknown";
}

}  // namespace tether

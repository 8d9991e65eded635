// SPDX-License-Identifier: MIT
#include "tether/resolver.h"

namespace tether {

const char* to_string(ResolveStatus status) {
    switch (status) {
        case ResolveStatus::kPending:
            return "pending";
        case ResolveStatus::kDone:
            return "done";
        case ResolveStatus::kNameError:
            return "name_error";
        case ResolveStatus::kFailed:
            return "failed";
    }
    return "unknown";
}

}  // namespace tether

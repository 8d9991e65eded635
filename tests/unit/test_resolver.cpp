// SPDX-License-Identifier: MIT
#include <cstring>

// After the standard headers: CppUTest's leak detector redefines `new`.
#include <CppUTest/TestHarness.h>

#include "tether/resolver.h"

using tether::ResolveStatus;

TEST_GROUP(ResolveStatus){};

TEST(ResolveStatus, EveryStatusHasAStableDistinctName) {
    STRCMP_EQUAL("pending", tether::to_string(ResolveStatus::kPending));
    STRCMP_EQUAL("done", tether::to_string(ResolveStatus::kDone));
    STRCMP_EQUAL("name_error", tether::to_string(ResolveStatus::kNameError));
    STRCMP_EQUAL("failed", tether::to_string(ResolveStatus::kFailed));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<ResolveStatus>(99)));
}

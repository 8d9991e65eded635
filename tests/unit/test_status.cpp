// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdlib>
#include <cstring>

#include "support/alloc_counter.h"
#include "tether/status.h"
#include "tether/time.h"

using tether::Status;

TEST_GROUP(Status){};

TEST(Status, EveryCodeHasADistinctName) {
    const Status all[] = {Status::kOk,       Status::kInvalidArgument, Status::kNoSpace,
                          Status::kTooLarge, Status::kEmpty,           Status::kNotFound,
                          Status::kCorrupt,  Status::kIoError,         Status::kUnavailable,
                          Status::kConflict};
    for (Status a : all) {
        STRCMP_CONTAINS("", tether::to_string(a));
        CHECK(std::strcmp(tether::to_string(a), "unknown") != 0);
        for (Status b : all) {
            if (a != b) {
                CHECK(std::strcmp(tether::to_string(a), tether::to_string(b)) != 0);
            }
        }
    }
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<Status>(99)));
}

TEST_GROUP(Time){};

TEST(Time, DeadlinesSurviveWrapAround) {
    const tether::TimeMs near_wrap = 0xFFFFFF00u;
    const tether::TimeMs deadline = near_wrap + 0x200u;  // wraps to 0x100
    CHECK_FALSE(tether::time_reached(near_wrap, deadline));
    CHECK_TRUE(tether::time_reached(deadline, deadline));
    CHECK_TRUE(tether::time_reached(deadline + 1u, deadline));
    UNSIGNED_LONGS_EQUAL(0x200u, tether::time_until(near_wrap, deadline));
    UNSIGNED_LONGS_EQUAL(0u, tether::time_until(deadline + 5u, deadline));
    UNSIGNED_LONGS_EQUAL(0x210u, tether::time_since(deadline + 0x10u, near_wrap));
    UNSIGNED_LONGS_EQUAL(near_wrap, tether::time_earliest(near_wrap, deadline));
    UNSIGNED_LONGS_EQUAL(near_wrap, tether::time_earliest(deadline, near_wrap));
}

TEST_GROUP(AllocationCounter){};

TEST(AllocationCounter, SeesAllocationsFromNewAndMalloc) {
    tether::test::AllocationCounter counter;
    // Stored through volatile pointers so the compiler cannot elide the pairs.
    int* volatile object = new int(3);
    delete object;
    void* volatile block = std::malloc(16);
    std::free(block);
    CHECK(counter.count() >= 2);
}

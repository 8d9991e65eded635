// SPDX-License-Identifier: MIT
// The storage fake's crash model (tests/fakes/fake_storage.h): a power cut
// keeps any subset of the writes not yet synced, in order, with one torn.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fakes/fake_storage.h"
#include "support/tether_strings.h"

// After the standard headers: its operator-new macro breaks some of them.
#include <CppUTest/TestHarness.h>

using tether::Status;
using tether::test::FakeStorage;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes text(const std::string& value) {
    return Bytes(value.begin(), value.end());
}

void put(FakeStorage& storage, std::uint32_t offset, const std::string& value) {
    CHECK_EQUAL(Status::kOk, storage.write(offset, text(value).data(), value.size()));
}

FakeStorage::CrashPattern keeping(std::vector<bool> kept) {
    FakeStorage::CrashPattern pattern;
    pattern.kept = std::move(kept);
    return pattern;
}

}  // namespace

TEST_GROUP(FakeStorage) {
    FakeStorage storage;

    void setup() override {
        storage.set_contents(text("........"));
        put(storage, 0, "aaaa");
        put(storage, 2, "bbbb");
    }
};

TEST(FakeStorage, ListsTheUnsyncedWritesInOrderUntilASync) {
    UNSIGNED_LONGS_EQUAL(2, storage.unsynced_writes().size());
    UNSIGNED_LONGS_EQUAL(2, storage.unsynced_writes()[1].offset);
    CHECK(text("bbbb") == storage.unsynced_writes()[1].data);
    CHECK(text("aabbbb..") == storage.contents());
    CHECK_EQUAL(Status::kOk, storage.sync());
    CHECK(storage.unsynced_writes().empty());
    CHECK(text("aabbbb..") == storage.durable_contents());
}

TEST(FakeStorage, CrashKeepsAnySubsetOfTheUnsyncedWritesInTheirOrder) {
    const FakeStorage before = storage;
    const std::vector<std::pair<std::vector<bool>, std::string>> cases = {
        {{}, "........"},
        {{true, false}, "aaaa...."},
        {{false, true}, "..bbbb.."},
        {{true, true}, "aabbbb.."},
    };
    for (const auto& entry : cases) {
        FakeStorage copy = before;
        copy.crash(keeping(entry.first));
        CHECK(text(entry.second) == copy.contents());
        CHECK(copy.contents() == copy.durable_contents());
        CHECK(copy.unsynced_writes().empty());
    }
    storage.crash();
    CHECK(text("........") == storage.contents());
}

TEST(FakeStorage, CrashTearsOneKeptWriteToAPrefix) {
    FakeStorage::CrashPattern pattern = keeping({true, true});
    pattern.torn = 1;
    pattern.torn_bytes = 1;
    storage.crash(pattern);
    CHECK(text("aaba....") == storage.contents());
}

TEST(FakeStorage, KeptWriteBeyondTheEndGrowsTheStoreWithZeros) {
    put(storage, 8, "cc");
    put(storage, 12, "dd");
    storage.crash(keeping({false, false, false, true}));
    Bytes expected = text("........");
    expected.resize(12, 0);
    expected.push_back('d');
    expected.push_back('d');
    CHECK(expected == storage.contents());
}

TEST(FakeStorage, TornWriteIsListedAsFarAsItLanded) {
    storage.tear_next_write(3, Status::kIoError);
    CHECK_EQUAL(Status::kIoError, storage.write(4, text("cccc").data(), 4));
    UNSIGNED_LONGS_EQUAL(3, storage.unsynced_writes().size());
    CHECK(text("ccc") == storage.unsynced_writes()[2].data);
    storage.fail_next_write();
    CHECK_EQUAL(Status::kIoError, storage.write(0, text("x").data(), 1));
    UNSIGNED_LONGS_EQUAL(3, storage.unsynced_writes().size());
}

TEST(FakeStorage, SetContentsAndTruncateForgetTheUnsyncedWrites) {
    storage.truncate(4);
    CHECK(storage.unsynced_writes().empty());
    CHECK(text("aabb") == storage.contents());
    storage.crash();
    CHECK(text("....") == storage.contents());
    put(storage, 0, "z");
    storage.set_contents(text("xy"));
    CHECK(storage.unsynced_writes().empty());
    storage.crash();
    CHECK(text("xy") == storage.contents());
}

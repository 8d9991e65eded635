// SPDX-License-Identifier: MIT
// The device-state record: round trips, the A/B slots with torn writes and
// bit rot, and the bounds it checks.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <CppUTest/TestHarness.h>

#include "fakes/fake_storage.h"
#include "support/tether_strings.h"
#include "tether/device_state_record.h"

using tether::DeviceStateData;
using tether::DeviceStateRecord;
using tether::LoadSource;
using tether::Status;

namespace {

constexpr std::size_t kMax = 256;

// A DeviceStateData with its own document buffers.
struct Documents {
    Documents() {
        data.desired.data = desired;
        data.reported.data = reported;
        data.local.data = local;
        data.in_flight_body.data = body;
    }
    void set(tether::StoredDocument* document, const std::string& text) {
        std::memcpy(document->data, text.data(), text.size());
        document->size = text.size();
    }
    static std::string text(const tether::StoredDocument& document) {
        return std::string(document.data, document.size);
    }
    DeviceStateData data;
    char desired[kMax] = {};
    char reported[kMax] = {};
    char local[kMax] = {};
    char body[kMax] = {};
};

Documents sample(std::uint64_t version) {
    Documents d;
    d.data.desired_version = version;
    d.set(&d.data.desired, "{\"rate\":" + std::to_string(version) + "}");
    d.data.reported_version = 7;
    d.set(&d.data.reported, "{\"fw\":\"1.2\"}");
    d.set(&d.data.local, "{\"fw\":\"1.3\"}");
    d.data.in_flight = true;
    d.data.in_flight_whole = false;
    d.data.in_flight_base = 7;
    std::memcpy(d.data.in_flight_id, "0123456789abcdef", 17);
    d.set(&d.data.in_flight_body, "{\"fw\":\"1.3\"}");
    d.data.report_wanted = true;
    return d;
}

}  // namespace

TEST_GROUP(DeviceStateRecord){};

TEST(DeviceStateRecord, AFreshStoreLoadsDefaults) {
    tether::test::FakeStorage disk;
    DeviceStateRecord record(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kNewestSlot;
    CHECK_EQUAL(Status::kOk, record.load(&loaded.data, &source));
    CHECK_EQUAL(LoadSource::kDefaults, source);
    UNSIGNED_LONGS_EQUAL(0, loaded.data.desired_version);
    UNSIGNED_LONGS_EQUAL(0, loaded.data.desired.size);
    CHECK_FALSE(loaded.data.in_flight);
}

TEST(DeviceStateRecord, WhatIsSavedLoadsBackExactly) {
    tether::test::FakeStorage disk;
    Documents saved = sample(3);
    {
        DeviceStateRecord record(disk, kMax);
        CHECK_EQUAL(Status::kOk, record.save(saved.data));
    }
    DeviceStateRecord record(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kDefaults;
    CHECK_EQUAL(Status::kOk, record.load(&loaded.data, &source));
    CHECK_EQUAL(LoadSource::kNewestSlot, source);
    UNSIGNED_LONGS_EQUAL(3, loaded.data.desired_version);
    STRCMP_EQUAL("{\"rate\":3}", Documents::text(loaded.data.desired).c_str());
    UNSIGNED_LONGS_EQUAL(7, loaded.data.reported_version);
    STRCMP_EQUAL("{\"fw\":\"1.2\"}", Documents::text(loaded.data.reported).c_str());
    STRCMP_EQUAL("{\"fw\":\"1.3\"}", Documents::text(loaded.data.local).c_str());
    CHECK_TRUE(loaded.data.in_flight);
    CHECK_FALSE(loaded.data.in_flight_whole);
    CHECK_TRUE(loaded.data.report_wanted);
    UNSIGNED_LONGS_EQUAL(7, loaded.data.in_flight_base);
    STRCMP_EQUAL("0123456789abcdef", loaded.data.in_flight_id);
    STRCMP_EQUAL("{\"fw\":\"1.3\"}", Documents::text(loaded.data.in_flight_body).c_str());
    UNSIGNED_LONGS_EQUAL(1, record.generation());
}

TEST(DeviceStateRecord, OnlyTheUsedLengthIsWritten) {
    tether::test::FakeStorage disk;
    DeviceStateRecord record(disk, kMax);
    Documents saved = sample(1);
    CHECK_EQUAL(Status::kOk, record.save(saved.data));
    const std::size_t used = DeviceStateRecord::kHeaderSize + DeviceStateRecord::kCrcSize +
                             saved.data.desired.size + saved.data.reported.size +
                             saved.data.local.size + saved.data.in_flight_body.size;
    UNSIGNED_LONGS_EQUAL(used, disk.contents().size());  // slot 0, used length only
}

TEST(DeviceStateRecord, ATornSaveFallsBackToTheOlderSlot) {
    tether::test::FakeStorage disk;
    {
        DeviceStateRecord record(disk, kMax);
        CHECK_EQUAL(Status::kOk, record.save(sample(1).data));  // slot 0
        CHECK_EQUAL(Status::kOk, record.save(sample(2).data));  // slot 1
        // The third save goes to slot 0; a power cut tears its documents.
        Documents third = sample(3);
        CHECK_EQUAL(Status::kOk, record.save(third.data));
    }
    // Damage what the last save wrote to slot 0 (a byte of its first document).
    disk.flip_bit(DeviceStateRecord::kHeaderSize + 2, 3);
    DeviceStateRecord record(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kDefaults;
    CHECK_EQUAL(Status::kOk, record.load(&loaded.data, &source));
    CHECK_EQUAL(LoadSource::kOlderSlot, source);
    UNSIGNED_LONGS_EQUAL(2, loaded.data.desired_version);
    STRCMP_EQUAL("{\"rate\":2}", Documents::text(loaded.data.desired).c_str());
    // The next save overwrites the damaged slot, never the good one.
    CHECK_EQUAL(Status::kOk, record.save(sample(4).data));
    DeviceStateRecord again(disk, kMax);
    CHECK_EQUAL(Status::kOk, again.load(&loaded.data, &source));
    UNSIGNED_LONGS_EQUAL(4, loaded.data.desired_version);
    CHECK_EQUAL(LoadSource::kNewestSlot, source);
}

TEST(DeviceStateRecord, EveryPowerCutDuringASaveLeavesTheOldOrTheNewRecord) {
    // Every prefix of every write of one save, kept or lost in turn.
    for (std::size_t torn_write = 0; torn_write < 6; ++torn_write) {
        for (std::size_t bytes = 0; bytes < 40; bytes += 3) {
            tether::test::FakeStorage disk;
            {
                DeviceStateRecord record(disk, kMax);
                CHECK_EQUAL(Status::kOk, record.save(sample(1).data));
                CHECK_EQUAL(Status::kOk, record.save(sample(2).data));
            }
            DeviceStateRecord record(disk, kMax);
            Documents loaded;
            LoadSource source = LoadSource::kDefaults;
            CHECK_EQUAL(Status::kOk, record.load(&loaded.data, &source));
            disk.fail_next_sync();  // the save never completes: its writes are all unsynced
            CHECK_EQUAL(Status::kIoError, record.save(sample(3).data));
            const std::size_t writes = disk.unsynced_writes().size();
            tether::test::FakeStorage::CrashPattern pattern;
            pattern.kept.assign(writes, true);
            if (torn_write < writes) {
                pattern.torn = torn_write;
                pattern.torn_bytes = bytes;
            }
            disk.crash(pattern);
            DeviceStateRecord after(disk, kMax);
            CHECK_EQUAL(Status::kOk, after.load(&loaded.data, &source));
            CHECK_TRUE(loaded.data.desired_version == 2 || loaded.data.desired_version == 3);
            const std::string expected =
                "{\"rate\":" + std::to_string(loaded.data.desired_version) + "}";
            STRCMP_EQUAL(expected.c_str(), Documents::text(loaded.data.desired).c_str());
        }
    }
}

TEST(DeviceStateRecord, AFailedWriteKeepsThePreviousRecordAndRetriesTheSameSlot) {
    tether::test::FakeStorage disk;
    DeviceStateRecord record(disk, kMax);
    CHECK_EQUAL(Status::kOk, record.save(sample(1).data));
    disk.fail_next_write();
    CHECK_EQUAL(Status::kIoError, record.save(sample(2).data));
    UNSIGNED_LONGS_EQUAL(1, record.generation());
    CHECK_EQUAL(Status::kOk, record.save(sample(2).data));
    UNSIGNED_LONGS_EQUAL(2, record.generation());
    DeviceStateRecord again(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kDefaults;
    CHECK_EQUAL(Status::kOk, again.load(&loaded.data, &source));
    UNSIGNED_LONGS_EQUAL(2, loaded.data.desired_version);
}

TEST(DeviceStateRecord, AReadFailureIsAnIoErrorWithDefaults) {
    tether::test::FakeStorage disk;
    DeviceStateRecord record(disk, kMax);
    CHECK_EQUAL(Status::kOk, record.save(sample(5).data));
    disk.fail_next_read();
    DeviceStateRecord again(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kNewestSlot;
    CHECK_EQUAL(Status::kIoError, again.load(&loaded.data, &source));
    CHECK_EQUAL(LoadSource::kDefaults, source);
    UNSIGNED_LONGS_EQUAL(0, loaded.data.desired_version);
}

TEST(DeviceStateRecord, ADocumentAboveTheBoundOrAMissingIdIsRefused) {
    tether::test::FakeStorage disk;
    DeviceStateRecord record(disk, 8);
    Documents big = sample(1);  // its documents are longer than 8 bytes
    CHECK_EQUAL(Status::kInvalidArgument, record.save(big.data));
    DeviceStateRecord roomy(disk, kMax);
    Documents no_id = sample(1);
    no_id.data.in_flight_id[0] = '\0';
    CHECK_EQUAL(Status::kInvalidArgument, roomy.save(no_id.data));
    UNSIGNED_LONGS_EQUAL(0, disk.write_count());
}

TEST(DeviceStateRecord, ALengthBeyondTheSlotIsDamageNotARead) {
    tether::test::FakeStorage disk;
    {
        DeviceStateRecord record(disk, kMax);
        CHECK_EQUAL(Status::kOk, record.save(sample(1).data));
    }
    // Slot 0's first document length gets a high bit: larger than any slot.
    disk.flip_bit(56 + 3, 6);
    DeviceStateRecord record(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kNewestSlot;
    CHECK_EQUAL(Status::kOk, record.load(&loaded.data, &source));
    CHECK_EQUAL(LoadSource::kDefaults, source);
}

TEST(DeviceStateRecord, ASaveAfterAFailedLoadNeverLetsAnOlderSlotWinLater) {
    tether::test::FakeStorage disk;
    {
        DeviceStateRecord record(disk, kMax);
        CHECK_EQUAL(Status::kOk, record.save(sample(1).data));  // slot 0, generation 1
        CHECK_EQUAL(Status::kOk, record.save(sample(2).data));  // slot 1, generation 2
        CHECK_EQUAL(Status::kOk, record.save(sample(3).data));  // slot 0, generation 3
    }
    DeviceStateRecord record(disk, kMax);
    Documents loaded;
    LoadSource source = LoadSource::kNewestSlot;
    disk.fail_next_read();
    CHECK_EQUAL(Status::kIoError, record.load(&loaded.data, &source));
    // The store reads again: the save goes over the older slot, above generation 3.
    CHECK_EQUAL(Status::kOk, record.save(sample(9).data));
    UNSIGNED_LONGS_EQUAL(4, record.generation());
    DeviceStateRecord again(disk, kMax);
    CHECK_EQUAL(Status::kOk, again.load(&loaded.data, &source));
    UNSIGNED_LONGS_EQUAL(9, loaded.data.desired_version);
}

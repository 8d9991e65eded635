// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fakes/fake_storage.h"
#include "tether/crc32.h"
#include "tether/state_record.h"

using tether::LoadSource;
using tether::PersistentState;
using tether::StateRecord;
using tether::Status;
using tether::test::FakeStorage;
using Bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::size_t kSlot = StateRecord::kSlotSize;

// mt19937 output is fully specified, so every run sees the same sequence.
std::uint32_t draw(std::mt19937& random) {
    return static_cast<std::uint32_t>(random());
}

PersistentState make_state(std::uint32_t seed) {
    PersistentState state;
    state.reconnect_attempts = seed * 3u + 1u;
    state.session_version = seed + 100u;
    state.last_delivered_downlink_seq = 0x0100000000ull * seed + 7u;
    state.next_uplink_seq = 0x0200000000ull + seed;
    return state;
}

void put(Bytes* out, std::size_t offset, std::uint64_t value, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        (*out)[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

// An encoder written from the documented layout alone, independent of the
// one under test.
Bytes hand_encoded_slot(std::uint32_t generation, const PersistentState& state,
                        std::uint16_t version = 1, std::uint16_t payload_length = 28) {
    Bytes slot(kSlot, 0);
    slot[0] = 'T';
    slot[1] = 'T';
    slot[2] = 'H';
    slot[3] = 'R';
    put(&slot, 4, version, 2);
    put(&slot, 6, payload_length, 2);
    put(&slot, 8, generation, 4);
    put(&slot, 12, state.reconnect_attempts, 4);
    put(&slot, 16, state.session_version, 4);
    put(&slot, 20, state.last_delivered_downlink_seq, 8);
    put(&slot, 28, state.next_uplink_seq, 8);
    put(&slot, 36, state.uplink_settled_seq, 8);
    put(&slot, 60, tether::crc32(slot.data(), 60), 4);
    return slot;
}

Bytes two_slots(const Bytes& slot0, const Bytes& slot1) {
    Bytes store = slot0;
    store.insert(store.end(), slot1.begin(), slot1.end());
    return store;
}

Bytes slot_bytes(const FakeStorage& storage, std::size_t slot) {
    const Bytes& all = storage.contents();
    Bytes out(kSlot, 0);
    for (std::size_t i = 0; i < kSlot && slot * kSlot + i < all.size(); ++i) {
        out[i] = all[slot * kSlot + i];
    }
    return out;
}

struct Loaded {
    Status status;
    PersistentState state;
    LoadSource source;
    std::uint32_t generation;
};

// What a freshly started process would read from `storage`.
Loaded load_fresh(FakeStorage& storage) {
    StateRecord record(storage);
    Loaded loaded{};
    loaded.status = record.load(&loaded.state, &loaded.source);
    loaded.generation = record.generation();
    return loaded;
}

void check_loaded(const Loaded& loaded, const PersistentState& state, LoadSource source,
                  std::uint32_t generation) {
    CHECK(loaded.status == Status::kOk);
    CHECK(loaded.state == state);
    STRCMP_EQUAL(tether::to_string(source), tether::to_string(loaded.source));
    UNSIGNED_LONGS_EQUAL(generation, loaded.generation);
}

}  // namespace

TEST_GROUP(StateRecord) {
    FakeStorage storage;
};

TEST(StateRecord, FreshStoreLoadsDefaults) {
    check_loaded(load_fresh(storage), PersistentState{}, LoadSource::kDefaults, 0);
    UNSIGNED_LONGS_EQUAL(1u, PersistentState{}.next_uplink_seq);
}

TEST(StateRecord, SavedStateLoadsBackInANewProcess) {
    StateRecord record(storage);
    CHECK(record.save(make_state(5)) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1u, record.generation());
    check_loaded(load_fresh(storage), make_state(5), LoadSource::kNewestSlot, 1);
}

TEST(StateRecord, FirstSaveWritesTheDocumentedBytes) {
    PersistentState state;
    state.reconnect_attempts = 0x01020304u;
    state.session_version = 7u;
    state.last_delivered_downlink_seq = 0x1122334455667788ull;
    state.next_uplink_seq = 0x99u;
    StateRecord record(storage);
    CHECK(record.save(state) == Status::kOk);
    const Bytes expected = {
        0x54, 0x54, 0x48, 0x52, 0x01, 0x00, 0x1C, 0x00,  // "TTHR", version 1, length 28
        0x01, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01,  // generation 1, reconnect_attempts
        0x07, 0x00, 0x00, 0x00, 0x88, 0x77, 0x66, 0x55,  // session_version, last_delivered
        0x44, 0x33, 0x22, 0x11, 0x99, 0x00, 0x00, 0x00,  // ..., next_uplink_seq
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // reserved
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  //
        0x00, 0x00, 0x00, 0x00, 0x8A, 0x8D, 0x77, 0x57,  // CRC-32 of bytes 0..59
    };
    CHECK(expected == storage.contents());
    CHECK(hand_encoded_slot(1, state) == storage.contents());
}

TEST(StateRecord, LoadsASlotEncodedFromTheDocumentedLayout) {
    storage.set_contents(two_slots(Bytes(kSlot, 0), hand_encoded_slot(41, make_state(9))));
    check_loaded(load_fresh(storage), make_state(9), LoadSource::kNewestSlot, 41);
}

TEST(StateRecord, TheSettledSeqLivesInWhatVersionOneReserved) {
    PersistentState state = make_state(3);
    state.uplink_settled_seq = 0x0102030405060708ull;
    StateRecord record(storage);
    CHECK(record.save(state) == Status::kOk);
    CHECK(hand_encoded_slot(1, state) == storage.contents());
    CHECK_EQUAL(0x08, storage.contents()[36]);
    check_loaded(load_fresh(storage), state, LoadSource::kNewestSlot, 1);
    // A slot written before the field existed (zero there) loads as 0.
    storage.set_contents(two_slots(Bytes(kSlot, 0), hand_encoded_slot(5, make_state(3))));
    check_loaded(load_fresh(storage), make_state(3), LoadSource::kNewestSlot, 5);
}

TEST(StateRecord, SavesAlternateBetweenTheSlots) {
    StateRecord record(storage);
    for (std::uint32_t i = 1; i <= 6; ++i) {
        const Bytes before0 = slot_bytes(storage, 0);
        const Bytes before1 = slot_bytes(storage, 1);
        const std::size_t syncs = storage.sync_count();
        CHECK(record.save(make_state(i)) == Status::kOk);
        const std::size_t written = (i - 1) % 2;
        CHECK(slot_bytes(storage, written) == hand_encoded_slot(i, make_state(i)));
        CHECK(slot_bytes(storage, 1 - written) == (written == 0 ? before1 : before0));
        UNSIGNED_LONGS_EQUAL(i, record.generation());
        UNSIGNED_LONGS_EQUAL(syncs + 1, storage.sync_count());  // one per save
        check_loaded(load_fresh(storage), make_state(i), LoadSource::kNewestSlot, i);
    }
    UNSIGNED_LONGS_EQUAL(2 * kSlot, storage.contents().size());
}

TEST(StateRecord, SaveAfterLoadWritesTheOlderSlot) {
    for (std::size_t newest = 0; newest < 2; ++newest) {
        const Bytes older = hand_encoded_slot(8, make_state(1));
        const Bytes newer = hand_encoded_slot(9, make_state(2));
        storage.set_contents(newest == 0 ? two_slots(newer, older) : two_slots(older, newer));
        StateRecord record(storage);
        PersistentState state;
        LoadSource source = LoadSource::kDefaults;
        CHECK(record.load(&state, &source) == Status::kOk);
        CHECK(state == make_state(2));
        UNSIGNED_LONGS_EQUAL(9u, record.generation());
        CHECK(record.save(make_state(3)) == Status::kOk);
        CHECK(slot_bytes(storage, newest) == newer);
        CHECK(slot_bytes(storage, 1 - newest) == hand_encoded_slot(10, make_state(3)));
    }
}

TEST(StateRecord, PowerCutAtEveryByteOfASaveKeepsThePreviousRecord) {
    const Status reports[] = {Status::kIoError, Status::kOk};
    for (std::uint32_t earlier_saves = 0; earlier_saves <= 3; ++earlier_saves) {
        for (std::size_t landed = 0; landed <= kSlot; ++landed) {
            for (Status reported : reports) {
                FakeStorage store;
                StateRecord record(store);
                for (std::uint32_t i = 1; i <= earlier_saves; ++i) {
                    CHECK(record.save(make_state(i)) == Status::kOk);
                }
                const std::size_t target = earlier_saves % 2;
                const Bytes target_before = slot_bytes(store, target);
                store.tear_next_write(landed, reported);
                const Status saved = record.save(make_state(99));
                CHECK(saved == reported);
                // A device that claimed success got a sync; either way the
                // landed bytes are on the medium when the power goes.
                const Loaded loaded = load_fresh(store);
                CHECK(loaded.status == Status::kOk);
                if (landed == kSlot) {
                    check_loaded(loaded, make_state(99), LoadSource::kNewestSlot,
                                 earlier_saves + 1);
                    continue;
                }
                if (earlier_saves == 0) {
                    check_loaded(loaded, PersistentState{}, LoadSource::kDefaults, 0);
                    continue;
                }
                const bool target_unchanged = slot_bytes(store, target) == target_before;
                check_loaded(loaded, make_state(earlier_saves),
                             target_unchanged ? LoadSource::kNewestSlot : LoadSource::kOlderSlot,
                             earlier_saves);
            }
        }
    }
}

TEST(StateRecord, EveryBitFlipInTheNewestSlotFallsBackToTheOlder) {
    StateRecord record(storage);
    CHECK(record.save(make_state(1)) == Status::kOk);
    CHECK(record.save(make_state(2)) == Status::kOk);
    const Bytes intact = storage.contents();
    for (std::size_t bit = 0; bit < 8 * kSlot; ++bit) {
        storage.set_contents(intact);
        storage.flip_bit(kSlot + bit / 8, static_cast<unsigned>(bit % 8));
        check_loaded(load_fresh(storage), make_state(1), LoadSource::kOlderSlot, 1);
    }
}

TEST(StateRecord, BitFlipInTheOlderSlotStillLoadsTheNewest) {
    StateRecord record(storage);
    CHECK(record.save(make_state(1)) == Status::kOk);
    CHECK(record.save(make_state(2)) == Status::kOk);
    storage.flip_bit(13, 6);
    check_loaded(load_fresh(storage), make_state(2), LoadSource::kOlderSlot, 2);
}

TEST(StateRecord, TruncationAtEveryLengthLoadsWhatSurvives) {
    StateRecord record(storage);
    CHECK(record.save(make_state(1)) == Status::kOk);
    CHECK(record.save(make_state(2)) == Status::kOk);
    const Bytes intact = storage.contents();
    for (std::size_t length = 0; length <= 2 * kSlot; ++length) {
        storage.set_contents(intact);
        storage.truncate(length);
        const Loaded loaded = load_fresh(storage);
        if (length < kSlot) {
            check_loaded(loaded, PersistentState{}, LoadSource::kDefaults, 0);
        } else if (length == kSlot) {
            check_loaded(loaded, make_state(1), LoadSource::kNewestSlot, 1);
        } else if (length < 2 * kSlot) {
            check_loaded(loaded, make_state(1), LoadSource::kOlderSlot, 1);
        } else {
            check_loaded(loaded, make_state(2), LoadSource::kNewestSlot, 2);
        }
    }
}

TEST(StateRecord, OnlyAnAllZeroSecondSlotCountsAsNeverWritten) {
    Bytes store = hand_encoded_slot(3, make_state(4));
    store.resize(kSlot + 10, 0);
    storage.set_contents(store);
    check_loaded(load_fresh(storage), make_state(4), LoadSource::kNewestSlot, 3);
    store.resize(2 * kSlot, 0);
    storage.set_contents(store);
    check_loaded(load_fresh(storage), make_state(4), LoadSource::kNewestSlot, 3);
    // A single non-zero byte anywhere means something was written there.
    store.back() = 1;
    storage.set_contents(store);
    check_loaded(load_fresh(storage), make_state(4), LoadSource::kOlderSlot, 3);
}

TEST(StateRecord, ShortSlotIsDamagedEvenWhenOnlyAZeroByteIsMissing) {
    // Find a record whose CRC ends in a zero byte: cut that byte off and the
    // zero-padded rest would still check out, so only the length rejects it.
    std::uint32_t seed = 0;
    while (hand_encoded_slot(1, make_state(seed))[kSlot - 1] != 0) {
        ++seed;
    }
    Bytes store = hand_encoded_slot(1, make_state(seed));
    store.pop_back();
    storage.set_contents(store);
    check_loaded(load_fresh(storage), PersistentState{}, LoadSource::kDefaults, 0);
    Bytes two =
        two_slots(hand_encoded_slot(2, make_state(1)), hand_encoded_slot(3, make_state(seed)));
    two.pop_back();
    storage.set_contents(two);
    check_loaded(load_fresh(storage), make_state(1), LoadSource::kOlderSlot, 2);
}

TEST(StateRecord, WrongVersionOrLengthIsDamagedEvenWithAGoodCrc) {
    const Bytes good = hand_encoded_slot(1, make_state(1));
    storage.set_contents(two_slots(good, hand_encoded_slot(2, make_state(2), 2, 28)));
    check_loaded(load_fresh(storage), make_state(1), LoadSource::kOlderSlot, 1);
    storage.set_contents(two_slots(good, hand_encoded_slot(2, make_state(2), 1, 29)));
    check_loaded(load_fresh(storage), make_state(1), LoadSource::kOlderSlot, 1);
    Bytes bad_magic = hand_encoded_slot(2, make_state(2));
    bad_magic[3] = 'X';
    put(&bad_magic, 60, tether::crc32(bad_magic.data(), 60), 4);
    storage.set_contents(two_slots(good, bad_magic));
    check_loaded(load_fresh(storage), make_state(1), LoadSource::kOlderSlot, 1);
}

TEST(StateRecord, BothSlotsDamagedGivesDefaultsAndTheNextSaveRecovers) {
    StateRecord writer(storage);
    CHECK(writer.save(make_state(1)) == Status::kOk);
    CHECK(writer.save(make_state(2)) == Status::kOk);
    storage.flip_bit(0, 0);
    storage.flip_bit(kSlot, 0);
    StateRecord record(storage);
    PersistentState state = make_state(7);
    LoadSource source = LoadSource::kNewestSlot;
    CHECK(record.load(&state, &source) == Status::kOk);
    CHECK(state == PersistentState{});
    CHECK(source == LoadSource::kDefaults);
    UNSIGNED_LONGS_EQUAL(0u, record.generation());
    CHECK(record.save(make_state(3)) == Status::kOk);
    check_loaded(load_fresh(storage), make_state(3), LoadSource::kOlderSlot, 1);
    CHECK(record.save(make_state(4)) == Status::kOk);
    check_loaded(load_fresh(storage), make_state(4), LoadSource::kNewestSlot, 2);
}

TEST(StateRecord, RandomGarbageGivesDefaultsOrAnIntactRecord) {
    std::mt19937 random(20240611u);
    for (int round = 0; round < 3000; ++round) {
        Bytes garbage(draw(random) % (2 * kSlot + 40));
        for (auto& byte : garbage) {
            byte = static_cast<std::uint8_t>(draw(random));
        }
        // Every third store starts with the right header, so the CRC is what
        // must reject it.
        if (round % 3 == 0 && garbage.size() >= 8) {
            const Bytes header = hand_encoded_slot(1, PersistentState{});
            std::copy_n(header.begin(), 8, garbage.begin());
        }
        storage.set_contents(garbage);
        check_loaded(load_fresh(storage), PersistentState{}, LoadSource::kDefaults, 0);
    }
}

TEST(StateRecord, RandomDamageToValidSlotsNeverYieldsAnInventedRecord) {
    StateRecord writer(storage);
    CHECK(writer.save(make_state(1)) == Status::kOk);
    CHECK(writer.save(make_state(2)) == Status::kOk);
    const Bytes intact = storage.contents();
    std::mt19937 random(77u);
    for (int round = 0; round < 3000; ++round) {
        Bytes damaged = intact;
        const unsigned changes = 1u + draw(random) % 6u;
        for (unsigned c = 0; c < changes; ++c) {
            damaged[draw(random) % damaged.size()] = static_cast<std::uint8_t>(draw(random));
        }
        damaged.resize(damaged.size() - draw(random) % 8u);
        storage.set_contents(damaged);
        const Loaded loaded = load_fresh(storage);
        CHECK(loaded.status == Status::kOk);
        const bool known = (loaded.state == make_state(2) && loaded.generation == 2) ||
                           (loaded.state == make_state(1) && loaded.generation == 1) ||
                           (loaded.state == PersistentState{} && loaded.generation == 0);
        CHECK(known);
    }
}

TEST(StateRecord, WritesNotSyncedAreLostOnCrash) {
    StateRecord record(storage);
    CHECK(record.save(make_state(1)) == Status::kOk);
    storage.fail_next_sync();
    CHECK(record.save(make_state(2)) == Status::kIoError);
    UNSIGNED_LONGS_EQUAL(1u, record.generation());
    storage.crash();
    check_loaded(load_fresh(storage), make_state(1), LoadSource::kNewestSlot, 1);
}

// Found by tether-crash-points: a save written but never synced (its process
// was killed before the sync) was loaded after the restart, and a power cut
// then brought back the record before it: the generation went backwards below
// one that load() had returned.
TEST(StateRecord, WhatLoadReturnsSurvivesAPowerCutAfterAKill) {
    {
        StateRecord record(storage);
        CHECK(record.save(make_state(1)) == Status::kOk);
        storage.fail_next_sync();  // as if killed between the write and the sync
        CHECK(record.save(make_state(2)) == Status::kIoError);
    }
    check_loaded(load_fresh(storage), make_state(2), LoadSource::kNewestSlot, 2);
    storage.crash();
    check_loaded(load_fresh(storage), make_state(2), LoadSource::kNewestSlot, 2);
}

TEST(StateRecord, FailedSyncInLoadIsReportedWithTheRecordLoaded) {
    StateRecord writer(storage);
    CHECK(writer.save(make_state(1)) == Status::kOk);
    storage.fail_next_sync();
    StateRecord record(storage);
    PersistentState state;
    LoadSource source = LoadSource::kDefaults;
    CHECK(record.load(&state, &source) == Status::kIoError);
    CHECK(state == make_state(1));
    CHECK(source == LoadSource::kNewestSlot);
    UNSIGNED_LONGS_EQUAL(1u, record.generation());
    CHECK(record.save(make_state(2)) == Status::kOk);
    check_loaded(load_fresh(storage), make_state(2), LoadSource::kNewestSlot, 2);
}

TEST(StateRecord, FailedSaveRetriesTheSameSlotAndSparesTheNewest) {
    StateRecord record(storage);
    CHECK(record.save(make_state(1)) == Status::kOk);
    const Bytes newest = slot_bytes(storage, 0);
    storage.fail_next_sync();
    CHECK(record.save(make_state(2)) == Status::kIoError);
    storage.tear_next_write(20, Status::kIoError);
    CHECK(record.save(make_state(3)) == Status::kIoError);
    storage.fail_next_write();
    CHECK(record.save(make_state(4)) == Status::kIoError);
    CHECK(slot_bytes(storage, 0) == newest);
    UNSIGNED_LONGS_EQUAL(1u, record.generation());
    UNSIGNED_LONGS_EQUAL(1u, storage.sync_count());
    CHECK(record.save(make_state(5)) == Status::kOk);
    CHECK(slot_bytes(storage, 0) == newest);
    CHECK(slot_bytes(storage, 1) == hand_encoded_slot(2, make_state(5)));
    check_loaded(load_fresh(storage), make_state(5), LoadSource::kNewestSlot, 2);
}

TEST(StateRecord, GenerationWrapsPastTheMaximumToOne) {
    storage.set_contents(two_slots(hand_encoded_slot(0xFFFFFFFEu, make_state(1)),
                                   hand_encoded_slot(0xFFFFFFFFu, make_state(2))));
    StateRecord record(storage);
    PersistentState state;
    LoadSource source = LoadSource::kDefaults;
    CHECK(record.load(&state, &source) == Status::kOk);
    CHECK(state == make_state(2));
    UNSIGNED_LONGS_EQUAL(0xFFFFFFFFu, record.generation());
    CHECK(record.save(make_state(3)) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1u, record.generation());
    CHECK(slot_bytes(storage, 0) == hand_encoded_slot(1, make_state(3)));
    check_loaded(load_fresh(storage), make_state(3), LoadSource::kNewestSlot, 1);
    CHECK(record.save(make_state(4)) == Status::kOk);
    CHECK(slot_bytes(storage, 1) == hand_encoded_slot(2, make_state(4)));
    check_loaded(load_fresh(storage), make_state(4), LoadSource::kNewestSlot, 2);
}

TEST(StateRecord, NewerGenerationWinsAcrossTheWrapInEitherSlot) {
    storage.set_contents(two_slots(hand_encoded_slot(3, make_state(1)),
                                   hand_encoded_slot(0xFFFFFFFDu, make_state(2))));
    check_loaded(load_fresh(storage), make_state(1), LoadSource::kNewestSlot, 3);
    storage.set_contents(two_slots(hand_encoded_slot(0xFFFFFFFDu, make_state(1)),
                                   hand_encoded_slot(3, make_state(2))));
    check_loaded(load_fresh(storage), make_state(2), LoadSource::kNewestSlot, 3);
}

TEST(StateRecord, ReadErrorGivesDefaultsAndKeepsTheSlotChoice) {
    StateRecord record(storage);
    CHECK(record.save(make_state(1)) == Status::kOk);
    CHECK(record.save(make_state(2)) == Status::kOk);
    storage.fail_next_read();
    PersistentState state = make_state(7);
    LoadSource source = LoadSource::kNewestSlot;
    CHECK(record.load(&state, &source) == Status::kIoError);
    CHECK(state == PersistentState{});
    CHECK(source == LoadSource::kDefaults);
    UNSIGNED_LONGS_EQUAL(2u, record.generation());
    const Bytes newest = slot_bytes(storage, 1);
    CHECK(record.save(make_state(3)) == Status::kOk);
    CHECK(slot_bytes(storage, 1) == newest);
    check_loaded(load_fresh(storage), make_state(3), LoadSource::kNewestSlot, 3);
}

TEST(StateRecord, WriteErrorIsReportedAndChangesNothing) {
    StateRecord record(storage);
    storage.fail_next_write();
    CHECK(record.save(make_state(1)) == Status::kIoError);
    UNSIGNED_LONGS_EQUAL(0u, storage.sync_count());
    CHECK(storage.contents().empty());
    UNSIGNED_LONGS_EQUAL(0u, record.generation());
    check_loaded(load_fresh(storage), PersistentState{}, LoadSource::kDefaults, 0);
}

// Random saves, failures, torn writes and crashes against a model that only
// remembers the last save that returned kOk.
TEST(StateRecord, MatchesAModelUnderRandomFaults) {
    std::mt19937 random(4242u);
    auto record = std::make_unique<StateRecord>(storage);
    PersistentState expected;
    std::uint32_t expected_generation = 0;
    LoadSource expected_source = LoadSource::kDefaults;
    bool reload_seen = false;
    for (std::uint32_t step = 1; step <= 3000; ++step) {
        const PersistentState next = make_state(step);
        switch (draw(random) % 5u) {
            case 0:
                CHECK(record->save(next) == Status::kOk);
                expected = next;
                ++expected_generation;
                break;
            case 1:
                storage.fail_next_write();
                CHECK(record->save(next) == Status::kIoError);
                break;
            case 2:
                storage.fail_next_sync();
                CHECK(record->save(next) == Status::kIoError);
                break;
            case 3:
                storage.tear_next_write(draw(random) % kSlot, Status::kIoError);
                CHECK(record->save(next) == Status::kIoError);
                break;
            default: {
                storage.crash();
                record = std::make_unique<StateRecord>(storage);
                PersistentState loaded;
                LoadSource source = LoadSource::kDefaults;
                CHECK(record->load(&loaded, &source) == Status::kOk);
                CHECK(loaded == expected);
                expected_source =
                    expected_generation == 0 ? LoadSource::kDefaults : LoadSource::kNewestSlot;
                CHECK(source == expected_source);
                reload_seen = true;
                break;
            }
        }
        UNSIGNED_LONGS_EQUAL(expected_generation, record->generation());
    }
    CHECK(reload_seen);
    CHECK(expected_generation > 100u);
}

TEST(StateRecord, EveryFieldTakesPartInEquality) {
    const PersistentState base = make_state(1);
    CHECK(base == make_state(1));
    CHECK_FALSE(base != make_state(1));
    PersistentState other = base;
    other.reconnect_attempts++;
    CHECK(base != other);
    other = base;
    other.session_version++;
    CHECK(base != other);
    other = base;
    other.last_delivered_downlink_seq++;
    CHECK(base != other);
    other = base;
    other.next_uplink_seq++;
    CHECK(base != other);
}

TEST(StateRecord, LoadSourcesHaveDistinctNames) {
    STRCMP_EQUAL("newest_slot", tether::to_string(LoadSource::kNewestSlot));
    STRCMP_EQUAL("older_slot", tether::to_string(LoadSource::kOlderSlot));
    STRCMP_EQUAL("defaults", tether::to_string(LoadSource::kDefaults));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<LoadSource>(9)));
}

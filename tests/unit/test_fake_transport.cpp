// SPDX-License-Identifier: MIT
#include <cstdint>
#include <string>
#include <vector>

#include "fakes/fake_transport.h"
#include "fakes/fixed_masks.h"

// CppUTest last: its operator-new macros break standard headers.
#include <CppUTest/TestHarness.h>

using tether::IoResult;
using tether::IoSlice;
using tether::IoStatus;
using tether::TransportError;
using tether::test::FakeTransport;

TEST_GROUP(FakeTransport){};

TEST(FakeTransport, ReadsNeverCrossAChunkAndHonourTheCaps) {
    FakeTransport transport;
    transport.push_input(std::string("abcdef"));
    transport.push_input_split(std::vector<std::uint8_t>{'g', 'h', 'i', 'j', 'k'}, 2);
    transport.set_max_read_size(4);
    std::uint8_t buffer[16] = {};
    UNSIGNED_LONGS_EQUAL(11, transport.input_remaining());
    IoResult r = transport.read(buffer, sizeof buffer);
    CHECK_TRUE(r.status == IoStatus::kOk);
    UNSIGNED_LONGS_EQUAL(4, r.bytes);
    r = transport.read(buffer, sizeof buffer);
    UNSIGNED_LONGS_EQUAL(2, r.bytes);  // rest of the first chunk
    CHECK_EQUAL('e', buffer[0]);
    r = transport.read(buffer, 1);
    UNSIGNED_LONGS_EQUAL(1, r.bytes);  // the request is smaller
    CHECK_EQUAL('g', buffer[0]);
    UNSIGNED_LONGS_EQUAL(4, transport.input_remaining());
    for (int i = 0; i < 3; ++i) {
        CHECK_TRUE(transport.read(buffer, sizeof buffer).status == IoStatus::kOk);
    }
    CHECK_TRUE(transport.read(buffer, sizeof buffer).status == IoStatus::kWouldBlock);
    UNSIGNED_LONGS_EQUAL(7, transport.read_calls());
}

TEST(FakeTransport, EofAndErrorsAreSticky) {
    FakeTransport closed;
    closed.push_eof();
    std::uint8_t buffer[4];
    CHECK_TRUE(closed.read(buffer, 4).status == IoStatus::kClosed);
    CHECK_TRUE(closed.read(buffer, 4).status == IoStatus::kClosed);
    FakeTransport broken;
    broken.push_error(TransportError::kTimedOut);
    CHECK_TRUE(broken.read(buffer, 4).error == TransportError::kTimedOut);
    CHECK_TRUE(broken.read(buffer, 4).status == IoStatus::kError);
}

TEST(FakeTransport, PendingIsScripted) {
    FakeTransport transport;
    UNSIGNED_LONGS_EQUAL(0, transport.pending());
    transport.set_pending(9);
    UNSIGNED_LONGS_EQUAL(9, transport.pending());
    transport.push_input(std::string("abc"));
    transport.set_pending_tracks_input(true);
    UNSIGNED_LONGS_EQUAL(3, transport.pending());
}

TEST(FakeTransport, GatheredWritesAreCutAtTheCap) {
    FakeTransport transport;
    const std::uint8_t a[] = {'a', 'b', 'c'};
    const std::uint8_t b[] = {'d', 'e', 'f', 'g'};
    const IoSlice slices[] = {{a, 3}, {b, 4}};
    transport.set_max_write_size(5);
    IoResult r = transport.writev(slices, 2);
    UNSIGNED_LONGS_EQUAL(5, r.bytes);
    STRCMP_EQUAL("abcde", transport.output_string().c_str());
    transport.set_max_write_size(0);
    transport.block_next_writes(1);
    CHECK_TRUE(transport.writev(slices, 2).status == IoStatus::kWouldBlock);
    UNSIGNED_LONGS_EQUAL(7, transport.writev(slices, 2).bytes);
    UNSIGNED_LONGS_EQUAL(3, transport.writev_calls());
    UNSIGNED_LONGS_EQUAL(0, transport.write_calls());
    UNSIGNED_LONGS_EQUAL(12, transport.bytes_written());
    transport.clear_output();
    transport.set_discard_output(true);
    UNSIGNED_LONGS_EQUAL(3, transport.write(a, 3).bytes);
    UNSIGNED_LONGS_EQUAL(0, transport.output().size());
    transport.fail_writes(TransportError::kReset);
    CHECK_TRUE(transport.writev(slices, 2).error == TransportError::kReset);
}

TEST(FakeTransport, TheRestOfTheContract) {
    FakeTransport transport;
    CHECK_TRUE(transport.establish().status == IoStatus::kOk);
    LONGS_EQUAL(-1, transport.fd());
    const tether::PollInterest interest = transport.interest(true, false);
    CHECK_TRUE(interest.read);
    CHECK_FALSE(interest.write);
    transport.close();
    UNSIGNED_LONGS_EQUAL(1, transport.close_calls());
}

TEST(FakeTransport, FixedMasksRepeatTheKey) {
    tether::test::FixedMasks masks(0x37fa213du);
    std::uint8_t out[8] = {};
    CHECK_TRUE(masks.fill_masks(out, sizeof out));
    const std::uint8_t expected[8] = {0x37, 0xfa, 0x21, 0x3d, 0x37, 0xfa, 0x21, 0x3d};
    MEMCMP_EQUAL(expected, out, sizeof out);
    masks.set_failing(true);
    CHECK_FALSE(masks.fill_masks(out, sizeof out));
    UNSIGNED_LONGS_EQUAL(2, masks.calls());
    UNSIGNED_LONGS_EQUAL(8, masks.bytes());
}

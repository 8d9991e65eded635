// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "support/alloc_counter.h"
#include "tether/net/utf8.h"

using tether::net::is_valid_utf8;
using tether::net::Utf8Validator;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(const char* text) {
    return Bytes(text, text + std::strlen(text));
}

bool valid(const Bytes& bytes) {
    return is_valid_utf8(bytes.data(), bytes.size());
}

// Encodes a code point the textbook way (no validity checks: surrogates and
// values up to 0x7FFFFFFF produce the bytes the old 5/6-byte rules gave).
Bytes encode(std::uint32_t cp) {
    if (cp < 0x80) {
        return Bytes{static_cast<std::uint8_t>(cp)};
    }
    if (cp < 0x800) {
        return Bytes{static_cast<std::uint8_t>(0xC0 | (cp >> 6)),
                     static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
    }
    if (cp < 0x10000) {
        return Bytes{static_cast<std::uint8_t>(0xE0 | (cp >> 12)),
                     static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
                     static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
    }
    if (cp < 0x200000) {
        return Bytes{static_cast<std::uint8_t>(0xF0 | (cp >> 18)),
                     static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F)),
                     static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
                     static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
    }
    if (cp < 0x4000000) {
        return Bytes{static_cast<std::uint8_t>(0xF8 | (cp >> 24)),
                     static_cast<std::uint8_t>(0x80 | ((cp >> 18) & 0x3F)),
                     static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F)),
                     static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
                     static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
    }
    return Bytes{static_cast<std::uint8_t>(0xFC | (cp >> 30)),
                 static_cast<std::uint8_t>(0x80 | ((cp >> 24) & 0x3F)),
                 static_cast<std::uint8_t>(0x80 | ((cp >> 18) & 0x3F)),
                 static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F)),
                 static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
                 static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
}

// Reference decoder: decodes each sequence by its lead byte, then rejects
// it unless it is the shortest encoding of a Unicode scalar value. Written
// independently of the validator's first-continuation ranges.
bool reference_valid(const std::uint8_t* data, std::size_t size) {
    std::size_t i = 0;
    while (i < size) {
        const std::uint8_t lead = data[i];
        std::size_t length = 0;
        std::uint32_t cp = 0;
        if (lead < 0x80) {
            length = 1;
            cp = lead;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2;
            cp = lead & 0x1Fu;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3;
            cp = lead & 0x0Fu;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4;
            cp = lead & 0x07u;
        } else {
            return false;
        }
        if (size - i < length) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            if ((data[i + k] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (data[i + k] & 0x3Fu);
        }
        const std::uint32_t shortest_minimum[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < shortest_minimum[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += length;
    }
    return true;
}

// Index of the first byte after which the validator (fed one byte at a
// time) reports failure, or -1 when it never does.
long first_failing_byte(const Bytes& bytes) {
    Utf8Validator validator;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (!validator.feed(&bytes[i], 1)) {
            return static_cast<long>(i);
        }
    }
    return -1;
}

// Deterministic 32-bit generator for the sampled checks (fixed seed).
struct Lcg {
    std::uint32_t state;
    std::uint32_t next() {
        state = state * 1664525u + 1013904223u;
        return state;
    }
};

}  // namespace

TEST_GROUP(Utf8Validator){};

TEST(Utf8Validator, EmptyInputIsValid) {
    CHECK_TRUE(is_valid_utf8(nullptr, 0));
    Utf8Validator validator;
    CHECK_TRUE(validator.complete());
    CHECK_TRUE(validator.feed(nullptr, 0));
    CHECK_TRUE(validator.complete());
    CHECK_FALSE(validator.failed());
}

TEST(Utf8Validator, BoundaryCodePointsAreValid) {
    const std::uint32_t boundaries[] = {0x0,    0x7F,    0x80,    0x7FF,    0x800,   0xD7FF,
                                        0xE000, 0xFFFD,  0xFFFE,  0xFFFF,   0x10000, 0x10FFFF,
                                        0xFDD0, 0x1FFFF, 0xEFFFF, 0x100000, 0x3FFFF, 0x41};
    for (std::uint32_t cp : boundaries) {
        const Bytes bytes = encode(cp);
        CHECK_TRUE_TEXT(valid(bytes), "boundary code point rejected");
    }
    CHECK_TRUE(valid(bytes_of("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")));  // "κόσμε"
}

TEST(Utf8Validator, CodePointsBeyondUnicodeAreRejected) {
    const std::uint32_t beyond[] = {0x110000,  0x13FFFF,  0x1FFFFF,  0x200000,
                                    0x3FFFFFF, 0x4000000, 0x7FFFFFFF};
    for (std::uint32_t cp : beyond) {
        CHECK_FALSE(valid(encode(cp)));
    }
    // F4 90: no continuation could bring it back under U+10FFFF.
    LONGS_EQUAL(1, first_failing_byte(Bytes{0xF4, 0x90, 0x80, 0x80}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xF5, 0x80, 0x80, 0x80}));
}

TEST(Utf8Validator, FiveAndSixByteFormsAndFeFfAreRejectedAtTheLeadByte) {
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xF8, 0x88, 0x80, 0x80, 0x80}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xFB, 0xBF, 0xBF, 0xBF, 0xBF}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xFE}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xFF}));
    LONGS_EQUAL(0, first_failing_byte(Bytes{0xFE, 0xFE, 0xFF, 0xFF}));
    LONGS_EQUAL(2, first_failing_byte(Bytes{'a', 'b', 0xFF, 'c'}));
}

TEST(Utf8Validator, OverlongFormsAreRejected) {
    // "/" (U+002F) in 2..6 bytes, and the largest overlong of each length.
    const Bytes overlongs[] = {
        {0xC0, 0xAF},
        {0xE0, 0x80, 0xAF},
        {0xF0, 0x80, 0x80, 0xAF},
        {0xF8, 0x80, 0x80, 0x80, 0xAF},
        {0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF},
        {0xC1, 0xBF},
        {0xE0, 0x9F, 0xBF},
        {0xF0, 0x8F, 0xBF, 0xBF},
        {0xC0, 0x80},  // overlong NUL
        {0xE0, 0x80, 0x80},
        {0xF0, 0x80, 0x80, 0x80},
    };
    for (const Bytes& bytes : overlongs) {
        CHECK_FALSE(valid(bytes));
        // Caught at the lead byte (C0, C1) or at the first continuation byte.
        CHECK(first_failing_byte(bytes) <= 1);
    }
}

TEST(Utf8Validator, SurrogatesAreRejected) {
    const std::uint32_t singles[] = {0xD800, 0xDB7F, 0xDB80, 0xDBFF, 0xDC00, 0xDF80, 0xDFFF};
    for (std::uint32_t cp : singles) {
        const Bytes bytes = encode(cp);
        CHECK_FALSE(valid(bytes));
        LONGS_EQUAL(1, first_failing_byte(bytes));
    }
    // Paired surrogates (CESU-8) are no better.
    CHECK_FALSE(valid(Bytes{0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}));
    CHECK_FALSE(valid(Bytes{0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF}));
}

TEST(Utf8Validator, StrayContinuationBytesAreRejected) {
    for (unsigned b = 0x80; b <= 0xBF; ++b) {
        const Bytes alone{static_cast<std::uint8_t>(b)};
        CHECK_FALSE(valid(alone));
        LONGS_EQUAL(3, first_failing_byte(Bytes{'a', 0xC3, 0xA9, static_cast<std::uint8_t>(b)}));
    }
    // Every continuation byte in one run.
    Bytes run;
    for (unsigned b = 0x80; b <= 0xBF; ++b) {
        run.push_back(static_cast<std::uint8_t>(b));
    }
    CHECK_FALSE(valid(run));
}

TEST(Utf8Validator, LonelyLeadBytesFollowedBySpaceAreRejected) {
    for (unsigned lead = 0xC0; lead <= 0xFF; ++lead) {
        const Bytes bytes{static_cast<std::uint8_t>(lead), ' '};
        CHECK_FALSE(valid(bytes));
    }
}

TEST(Utf8Validator, TruncatedSequencesAreIncompleteButNotFailed) {
    const Bytes prefixes[] = {
        {0xC2},
        {0xDF},
        {0xE0, 0xA0},
        {0xEF, 0xBF},
        {0xE1},
        {0xF0, 0x90, 0x80},
        {0xF4, 0x8F, 0xBF},
        {0xF1},
        {'o', 'k', 0xE2, 0x82},
    };
    for (const Bytes& bytes : prefixes) {
        Utf8Validator validator;
        CHECK_TRUE(validator.feed(bytes.data(), bytes.size()));
        CHECK_FALSE(validator.complete());
        CHECK_FALSE(validator.failed());
        CHECK_FALSE(valid(bytes));
    }
    // All ten truncations of the Kuhn test concatenated: invalid.
    CHECK_FALSE(
        valid(Bytes{0xC0, 0xE0, 0x80, 0xF0, 0x80, 0x80, 0xDF, 0xEF, 0xBF, 0xF7, 0xBF, 0xBF}));
    // A truncated sequence interrupted by ASCII fails at the ASCII byte.
    LONGS_EQUAL(2, first_failing_byte(Bytes{0xE2, 0x82, 'x'}));
    LONGS_EQUAL(1, first_failing_byte(Bytes{0xF0, 0x7F}));
}

TEST(Utf8Validator, FailureIsStickyUntilReset) {
    Utf8Validator validator;
    const std::uint8_t bad[] = {0xC0, 0x80};
    const std::uint8_t good[] = {'h', 'i'};
    CHECK_FALSE(validator.feed(bad, sizeof bad));
    CHECK_TRUE(validator.failed());
    CHECK_FALSE(validator.feed(good, sizeof good));
    CHECK_FALSE(validator.feed(nullptr, 0));
    CHECK_FALSE(validator.complete());
    validator.reset();
    CHECK_FALSE(validator.failed());
    CHECK_TRUE(validator.complete());
    CHECK_TRUE(validator.feed(good, sizeof good));
    CHECK_TRUE(validator.complete());
}

TEST(Utf8Validator, ResetDropsAPendingSequence) {
    Utf8Validator validator;
    const std::uint8_t lead[] = {0xE2, 0x82};
    const std::uint8_t ascii[] = {'a'};
    CHECK_TRUE(validator.feed(lead, sizeof lead));
    validator.reset();
    CHECK_TRUE(validator.feed(ascii, sizeof ascii));
    CHECK_TRUE(validator.complete());
}

TEST(Utf8Validator, NullDataWithASizeFails) {
    Utf8Validator validator;
    CHECK_FALSE(validator.feed(nullptr, 3));
    CHECK_TRUE(validator.failed());
    CHECK_FALSE(is_valid_utf8(nullptr, 1));
}

TEST(Utf8Validator, EverySplitOfMultiByteSequencesAcrossFeedsIsHandled) {
    // Valid text mixing every sequence length; each boundary-straddling split
    // into two and three feeds must give the same answer as one feed.
    const Bytes text = bytes_of(
        "a\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
        "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xf3\xbf\xbf\xbfz");
    CHECK_TRUE(valid(text));
    for (std::size_t first = 0; first <= text.size(); ++first) {
        for (std::size_t second = first; second <= text.size(); ++second) {
            Utf8Validator validator;
            CHECK_TRUE(validator.feed(text.data(), first));
            CHECK_TRUE(validator.feed(text.data() + first, second - first));
            CHECK_TRUE(validator.feed(text.data() + second, text.size() - second));
            CHECK_TRUE(validator.complete());
        }
    }
    // Invalid continuations are caught at the same byte whatever the split.
    const Bytes invalid_sequences[] = {
        {0xE0, 0x9F, 0x80},       {0xED, 0xA0, 0x80}, {0xF0, 0x8F, 0x80, 0x80},
        {0xF4, 0x90, 0x80, 0x80}, {0xE1, 0x80, 0xC0}, {0xF1, 0x80, 0x80, 0x7F},
    };
    for (const Bytes& bytes : invalid_sequences) {
        for (std::size_t split = 0; split <= bytes.size(); ++split) {
            Utf8Validator validator;
            const bool head = validator.feed(bytes.data(), split);
            const bool tail = validator.feed(bytes.data() + split, bytes.size() - split);
            CHECK_FALSE(head && tail);
            CHECK_TRUE(validator.failed());
        }
    }
}

TEST(Utf8Validator, AsciiFastPathFindsBadBytesAtEveryOffsetAndAlignment) {
    // 40 ASCII bytes with one bad byte placed at each position, starting at
    // each of 8 misalignments within the buffer.
    std::uint8_t buffer[64];
    for (std::size_t align = 0; align < 8; ++align) {
        for (std::size_t bad = 0; bad < 40; ++bad) {
            std::memset(buffer, 'x', sizeof buffer);
            buffer[align + bad] = 0x80;
            Utf8Validator validator;
            CHECK_FALSE(validator.feed(buffer + align, 40));
            validator.reset();
            CHECK_TRUE(validator.feed(buffer + align, bad));
            CHECK_TRUE(validator.complete());
            // A valid two-byte sequence at the same spot passes.
            buffer[align + bad] = 0xC3;
            buffer[align + bad + 1] = 0xA9;
            CHECK_TRUE(is_valid_utf8(buffer + align, 41));
        }
    }
    // High bit in only the last byte of an 8-byte word.
    CHECK_FALSE(valid(Bytes{'1', '2', '3', '4', '5', '6', '7', 0xFF, '9'}));
    CHECK_TRUE(valid(Bytes{'1', '2', '3', '4', '5', '6', '7', 0x7F, '9'}));
}

TEST(Utf8Validator, AllOneAndTwoByteInputsMatchTheReference) {
    for (unsigned a = 0; a < 256; ++a) {
        const std::uint8_t one[] = {static_cast<std::uint8_t>(a)};
        if (is_valid_utf8(one, 1) != reference_valid(one, 1)) {
            FAIL("1-byte input disagrees with the reference decoder");
        }
        for (unsigned b = 0; b < 256; ++b) {
            const std::uint8_t two[] = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b)};
            if (is_valid_utf8(two, 2) != reference_valid(two, 2)) {
                FAIL("2-byte input disagrees with the reference decoder");
            }
        }
    }
}

TEST(Utf8Validator, AllThreeByteInputsMatchTheReference) {
    std::size_t valid_count = 0;
    std::uint8_t input[3];
    for (unsigned a = 0; a < 256; ++a) {
        input[0] = static_cast<std::uint8_t>(a);
        for (unsigned b = 0; b < 256; ++b) {
            input[1] = static_cast<std::uint8_t>(b);
            for (unsigned c = 0; c < 256; ++c) {
                input[2] = static_cast<std::uint8_t>(c);
                const bool expected = reference_valid(input, 3);
                if (is_valid_utf8(input, 3) != expected) {
                    FAIL("3-byte input disagrees with the reference decoder");
                }
                valid_count += expected ? 1 : 0;
            }
        }
    }
    // 128^3 ASCII triples + 2 * 128 * 1920 (one 2-byte sequence and an ASCII byte,
    // either order) + 61440 three-byte sequences (U+0800..U+FFFF minus 2048 surrogates).
    UNSIGNED_LONGS_EQUAL(2097152u + 491520u + 61440u, valid_count);
}

TEST(Utf8Validator, SampledFourByteInputsMatchTheReference) {
    Lcg random{12345};
    std::size_t valid_count = 0;
    std::uint8_t input[4];
    for (int n = 0; n < 2000000; ++n) {
        const std::uint32_t r = random.next();
        // Bias the lead byte towards F0..F7 and later bytes towards 80..BF so that
        // the interesting four-byte region is hit often.
        input[0] = static_cast<std::uint8_t>((n % 2 == 0) ? (0xF0 | (r & 0x07)) : (r & 0xFF));
        for (int k = 1; k < 4; ++k) {
            const std::uint32_t byte = (r >> (8 * k)) & 0xFF;
            input[k] = static_cast<std::uint8_t>((n % 4 < 3) ? (0x80 | (byte & 0x3F)) : byte);
        }
        const bool expected = reference_valid(input, 4);
        if (is_valid_utf8(input, 4) != expected) {
            FAIL("4-byte input disagrees with the reference decoder");
        }
        valid_count += expected ? 1 : 0;
    }
    CHECK(valid_count > 100000);  // the sample reached the valid region
    // Every four-byte scalar value's lead and first continuation: exhaustive over
    // the two bytes that carry the range rules.
    for (unsigned a = 0xF0; a <= 0xFF; ++a) {
        for (unsigned b = 0; b < 256; ++b) {
            const std::uint8_t four[] = {static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(b),
                                         0x80, 0xBF};
            if (is_valid_utf8(four, 4) != reference_valid(four, 4)) {
                FAIL("4-byte input disagrees with the reference decoder");
            }
        }
    }
}

TEST(Utf8Validator, ValidationDoesNotAllocate) {
    const Bytes text = bytes_of("h\xc3\xa9llo w\xf0\x9f\x8c\x8drld, plain ascii tail");
    tether::test::AllocationCounter counter;
    CHECK_TRUE(is_valid_utf8(text.data(), text.size()));
    UNSIGNED_LONGS_EQUAL(0, counter.count());
}

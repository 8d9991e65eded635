// SPDX-License-Identifier: MIT
// Helpers on cJSON trees shared by the device-state codec's files
// (json_document.cpp, state_messages.cpp); private to tether_net.
#pragma once

#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tether/net/tether_v1.h"

namespace tether::net::v1::json {

/// Parses `size` bytes as exactly one JSON value (whitespace around it
/// allowed; anything else after it, a NUL byte included, is refused). The
/// tree, or null.
inline cJSON* parse_one(const char* text, std::size_t size) {
    const char* end = nullptr;
    cJSON* root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (root == nullptr) {
        return nullptr;
    }
    for (const char* p = end; p < text + size; ++p) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return nullptr;
        }
    }
    return root;
}

/// Owns one parsed tree, so every return path frees it.
class Tree {
  public:
    Tree() = default;
    explicit Tree(cJSON* root) : root_(root) {}
    ~Tree() { cJSON_Delete(root_); }
    Tree(const Tree&) = delete;
    Tree& operator=(const Tree&) = delete;

    cJSON* get() const { return root_; }
    cJSON* release() {
        cJSON* root = root_;
        root_ = nullptr;
        return root;
    }
    void reset(cJSON* root) {
        cJSON_Delete(root_);
        root_ = root;
    }

  private:
    cJSON* root_ = nullptr;
};

/// The members of one message object. Every lookup returns kMissingField
/// when the member is absent and kBadField when it has the wrong JSON type
/// or is out of range.
class Fields {
  public:
    explicit Fields(const cJSON* object) : object_(object) {}

    const cJSON* get(const char* name) const {
        return cJSON_GetObjectItemCaseSensitive(object_, name);
    }
    bool has(const char* name) const { return get(name) != nullptr; }

    V1Status unsigned_integer(const char* name, std::uint64_t min, std::uint64_t max,
                              std::uint64_t* out) const {
        const cJSON* item = get(name);
        if (item == nullptr) {
            return V1Status::kMissingField;
        }
        if (!cJSON_IsNumber(item)) {
            return V1Status::kBadField;
        }
        // cJSON keeps numbers as doubles. Every bound used here is at most
        // 2^53 - 1, so the comparisons are exact and, once in range, the
        // conversion back from uint64 tells whether there was a fraction.
        const double value = item->valuedouble;
        if (!(value >= static_cast<double>(min) && value <= static_cast<double>(max))) {
            return V1Status::kBadField;
        }
        const auto integral = static_cast<std::uint64_t>(value);
        if (static_cast<double>(integral) != value) {
            return V1Status::kBadField;
        }
        *out = integral;
        return V1Status::kOk;
    }

    V1Status seq(const char* name, std::uint64_t min, std::uint64_t* out) const {
        return unsigned_integer(name, min, kMaxJsonSeq, out);
    }

    V1Status uint32(const char* name, std::uint32_t min, std::uint32_t* out) const {
        std::uint64_t value = 0;
        const V1Status status = unsigned_integer(name, min, UINT32_MAX, &value);
        if (status == V1Status::kOk) {
            *out = static_cast<std::uint32_t>(value);
        }
        return status;
    }

    V1Status boolean(const char* name, bool* out) const {
        const cJSON* item = get(name);
        if (item == nullptr) {
            return V1Status::kMissingField;
        }
        if (!cJSON_IsBool(item)) {
            return V1Status::kBadField;
        }
        *out = cJSON_IsTrue(item) != 0;
        return V1Status::kOk;
    }

    // Copies a string of min_length..max_length bytes (after unescaping) into
    // `out`, which has room for max_length + 1. An embedded \u0000 ends the
    // text where cJSON's C string ends.
    V1Status string(const char* name, std::size_t min_length, std::size_t max_length,
                    char* out) const {
        const cJSON* item = get(name);
        if (item == nullptr) {
            return V1Status::kMissingField;
        }
        if (!cJSON_IsString(item) || item->valuestring == nullptr) {
            return V1Status::kBadField;
        }
        const std::size_t length = std::strlen(item->valuestring);
        if (length < min_length || length > max_length) {
            return V1Status::kBadField;
        }
        std::memcpy(out, item->valuestring, length);
        out[length] = '\0';
        return V1Status::kOk;
    }

  private:
    const cJSON* object_;
};

/// Appends into a caller buffer and remembers whether anything did not fit,
/// so a writer checks once, at the end.
class Writer {
  public:
    Writer(char* out, std::size_t capacity) : out_(out), capacity_(capacity) {}

    Writer& bytes(const char* data, std::size_t size) {
        if (overflow_ || size > capacity_ - length_) {
            overflow_ = true;
            return *this;
        }
        if (size > 0) {
            std::memcpy(out_ + length_, data, size);
        }
        length_ += size;
        return *this;
    }
    Writer& raw(const char* text) { return bytes(text, std::strlen(text)); }
    Writer& character(char c) { return bytes(&c, 1); }
    /// A string the caller has checked needs no escaping.
    Writer& quoted(const char* text, std::size_t size) {
        return raw("\"").bytes(text, size).raw("\"");
    }
    Writer& number(std::uint64_t value) {
        char digits[20];
        std::size_t count = 0;
        do {
            digits[sizeof digits - 1 - count] = static_cast<char>('0' + value % 10);
            value /= 10;
            ++count;
        } while (value != 0);
        return bytes(digits + sizeof digits - count, count);
    }
    Writer& boolean(bool value) { return raw(value ? "true" : "false"); }

    bool overflow() const { return overflow_; }
    std::size_t length() const { return length_; }
    /// kBufferTooSmall when anything did not fit, else kOk with *length set.
    V1Status finish(std::size_t* length) const {
        if (overflow_) {
            return V1Status::kBufferTooSmall;
        }
        *length = length_;
        return V1Status::kOk;
    }

  private:
    char* out_;
    std::size_t capacity_;
    std::size_t length_ = 0;
    bool overflow_ = false;
};

/// Runs each field check in order and keeps the first failure.
class Checks {
  public:
    Checks& operator<<(V1Status status) {
        if (status_ == V1Status::kOk) {
            status_ = status;
        }
        return *this;
    }
    V1Status status() const { return status_; }

  private:
    V1Status status_ = V1Status::kOk;
};

/// An object or array nested at most kMaxStateDepth deep with no object
/// holding a key twice; scalars are always well formed.
bool well_formed(const cJSON* item);

/// Writes `item` as compact JSON: no whitespace, strings escaped minimally
/// (only '"', '\\' and control characters), integers up to 2^53 as integers
/// and other numbers in the shortest form that reads back as the same double.
/// cJSON's own printer rounds numbers to 15 digits, which would change a
/// device's values on their way through. kBufferTooSmall when it does not
/// fit; kBadField for a number that is not finite.
V1Status print_compact(const cJSON* item, char* out, std::size_t capacity, std::size_t* length);

}  // namespace tether::net::v1::json

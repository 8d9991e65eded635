// SPDX-License-Identifier: MIT
#include "tether/session_id.h"

#include "tether/ascii.h"

#include <mbedtls/sha1.h>

#include <cstring>

namespace tether {

// Generated once at random (version 4) for tether and fixed forever: changing
// it would move every device to a new session id. 7ada0a06-5620-4a46-80ff-248e31991504
const Uuid kTetherSessionNamespace = {{0x7a, 0xda, 0x0a, 0x06, 0x56, 0x20, 0x4a, 0x46, 0x80, 0xff,
                                       0x24, 0x8e, 0x31, 0x99, 0x15, 0x04}};

namespace {

struct NamePart {
    const std::uint8_t* data;
    std::size_t size;
};

// The canonical text form groups the 16 bytes as 4-2-2-2-6 with dashes here.
bool is_dash_position(std::size_t index) {
    return index == 8 || index == 13 || index == 18 || index == 23;
}

// RFC 4122 section 4.3: SHA-1 over the namespace bytes followed by the name,
// the first 16 bytes of the digest, then the version and variant bits set.
// The name is hashed in parts so session ids need no buffer for the joined
// "<user>\n<fingerprint>" and no limit on its length.
Status uuid_v5_of_parts(const Uuid& ns, const NamePart* parts, std::size_t part_count, Uuid* out) {
    mbedtls_sha1_context context;
    mbedtls_sha1_init(&context);
    int result = mbedtls_sha1_starts_ret(&context);
    if (result == 0) {
        result = mbedtls_sha1_update_ret(&context, ns.bytes, sizeof ns.bytes);
    }
    for (std::size_t i = 0; i < part_count && result == 0; ++i) {
        result = mbedtls_sha1_update_ret(&context, parts[i].data, parts[i].size);
    }
    unsigned char digest[20];
    if (result == 0) {
        result = mbedtls_sha1_finish_ret(&context, digest);
    }
    mbedtls_sha1_free(&context);
    if (result != 0) {
        return Status::kUnavailable;
    }
    std::memcpy(out->bytes, digest, sizeof out->bytes);
    out->bytes[6] = static_cast<std::uint8_t>((out->bytes[6] & 0x0Fu) | 0x50u);  // version 5
    out->bytes[8] = static_cast<std::uint8_t>((out->bytes[8] & 0x3Fu) | 0x80u);  // RFC variant
    return Status::kOk;
}

}  // namespace

bool operator==(const Uuid& a, const Uuid& b) {
    return std::memcmp(a.bytes, b.bytes, sizeof a.bytes) == 0;
}

Status uuid_v5(const Uuid& ns, const std::uint8_t* name, std::size_t name_size, Uuid* out) {
    if (out == nullptr || (name == nullptr && name_size != 0)) {
        return Status::kInvalidArgument;
    }
    const NamePart part = {name, name_size};
    return uuid_v5_of_parts(ns, &part, 1, out);
}

Status session_id_for(const char* user_id, const char* device_fingerprint, Uuid* out) {
    if (user_id == nullptr || device_fingerprint == nullptr || out == nullptr ||
        user_id[0] == '\0' || device_fingerprint[0] == '\0') {
        return Status::kInvalidArgument;
    }
    // A newline in the user id would make the split ambiguous: ("a\nb", "c")
    // and ("a", "b\nc") would share a session.
    if (std::strchr(user_id, '\n') != nullptr) {
        return Status::kInvalidArgument;
    }
    static constexpr std::uint8_t kSeparator[1] = {'\n'};
    const NamePart parts[3] = {
        {reinterpret_cast<const std::uint8_t*>(user_id), std::strlen(user_id)},
        {kSeparator, sizeof kSeparator},
        {reinterpret_cast<const std::uint8_t*>(device_fingerprint),
         std::strlen(device_fingerprint)},
    };
    return uuid_v5_of_parts(kTetherSessionNamespace, parts, 3, out);
}

void format_uuid(const Uuid& uuid, char out[kUuidTextLength + 1]) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::size_t byte = 0;
    for (std::size_t i = 0; i < kUuidTextLength; ++i) {
        if (is_dash_position(i)) {
            out[i] = '-';
            continue;
        }
        const std::uint8_t value = uuid.bytes[byte / 2];
        out[i] = kDigits[(byte % 2 == 0 ? value >> 4 : value) & 0x0Fu];
        ++byte;
    }
    out[kUuidTextLength] = '\0';
}

bool parse_uuid(const char* text, Uuid* out) {
    if (text == nullptr || out == nullptr) {
        return false;
    }
    Uuid parsed = {};
    std::size_t nibble = 0;
    // Stops at the first character out of place, so a short string is never
    // read past its NUL.
    for (std::size_t i = 0; i < kUuidTextLength; ++i) {
        if (is_dash_position(i)) {
            if (text[i] != '-') {
                return false;
            }
            continue;
        }
        const int value = hex_digit_value(text[i]);
        if (value < 0) {
            return false;
        }
        const unsigned shift = nibble % 2 == 0 ? 4u : 0u;
        parsed.bytes[nibble / 2] = static_cast<std::uint8_t>(
            parsed.bytes[nibble / 2] | (static_cast<unsigned>(value) << shift));
        ++nibble;
    }
    if (text[kUuidTextLength] != '\0') {
        return false;
    }
    *out = parsed;
    return true;
}

std::uint32_t begin_new_session(PersistentState* state) {
    std::uint32_t next = state->session_version + 1;
    if (next == 0) {
        next = 1;
    }
    state->session_version = next;
    return next;
}

}  // namespace tether

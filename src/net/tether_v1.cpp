// SPDX-License-Identifier: MIT
#include "tether/net/tether_v1.h"

#include <cjson/cJSON.h>

#include <cstring>

#include "json_tree.h"
#include "tether/ascii.h"

namespace tether::net::v1 {

namespace {

// Binary header layout (docs/PROTOCOL.md sections 2 and 3.6):
//   [0]      kind ('D' or 'A')
//   [1]      flags: DATA may set kFlagAge where negotiated; every other bit,
//            and every bit of an ACK, is reserved (zero)
//   [2..9]   seq, big-endian
//   [10..13] DATA with kFlagAge only: age in ms, big-endian like the seq
constexpr std::size_t kFlagsOffset = 1;
constexpr std::size_t kSeqOffset = 2;
constexpr std::size_t kAgeOffset = kHeaderSize;
static_assert(kAgedDataHeaderSize == kAgeOffset + 4, "the age follows the seq");

void write_header(Kind kind, std::uint64_t seq, std::uint8_t* out) {
    out[0] = static_cast<std::uint8_t>(kind);
    out[kFlagsOffset] = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        out[kSeqOffset + i] = static_cast<std::uint8_t>(seq >> (56 - 8 * i));
    }
}

std::uint32_t read_age(const std::uint8_t* header) {
    std::uint32_t age = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        age = (age << 8) | header[kAgeOffset + i];
    }
    return age;
}

std::uint64_t read_seq(const std::uint8_t* header) {
    std::uint64_t seq = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        seq = (seq << 8) | header[kSeqOffset + i];
    }
    return seq;
}

// --- Shared field rules (parser and writers agree on them) -----------------

constexpr const char* kFeatureAgeName = "age";
constexpr const char* kFeatureStateName = "state";
constexpr std::uint32_t kKnownFeatures = kFeatureAge | kFeatureState;

bool is_uuid_text(const char* text, std::size_t length) {
    if (length != kSessionTextLength) {
        return false;
    }
    for (std::size_t i = 0; i < length; ++i) {
        const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_position ? text[i] != '-' : hex_digit_value(text[i]) < 0) {
            return false;
        }
    }
    return true;
}

bool is_printable_ascii(char c) {
    return c >= 0x20 && c <= 0x7E;
}

// What a writer emits without escaping: printable ASCII minus the two
// characters JSON strings must escape.
bool is_plain_text(const char* text, std::size_t length) {
    for (std::size_t i = 0; i < length; ++i) {
        if (!is_printable_ascii(text[i]) || text[i] == '"' || text[i] == '\\') {
            return false;
        }
    }
    return true;
}

// Length of the NUL-terminated text in a fixed field of `capacity` bytes, or
// `capacity` when the field holds no terminator (a caller bug).
std::size_t field_length(const char* field, std::size_t capacity) {
    const void* nul = std::memchr(field, '\0', capacity);
    return nul == nullptr ? capacity
                          : static_cast<std::size_t>(static_cast<const char*>(nul) - field);
}

bool is_error_code(std::uint32_t code) {
    return code >= 1000 && code <= 4999;
}

// --- Parsing ----------------------------------------------------------------

// The members of a control message, with the one field only they have.
class FieldReader : public json::Fields {
  public:
    using json::Fields::Fields;

    // The optional "features" array: strings only; known names set bits,
    // unknown ones are left for later versions. Absent: none.
    V1Status features(std::uint32_t* out) const {
        *out = 0;
        const cJSON* item = get("features");
        if (item == nullptr) {
            return V1Status::kOk;
        }
        if (!cJSON_IsArray(item)) {
            return V1Status::kBadField;
        }
        for (const cJSON* name = item->child; name != nullptr; name = name->next) {
            if (!cJSON_IsString(name) || name->valuestring == nullptr) {
                return V1Status::kBadField;
            }
            if (std::strcmp(name->valuestring, kFeatureAgeName) == 0) {
                *out |= kFeatureAge;
            } else if (std::strcmp(name->valuestring, kFeatureStateName) == 0) {
                *out |= kFeatureState;
            }
        }
        return V1Status::kOk;
    }
};

using json::Checks;

V1Status parse_hello(const FieldReader& fields, Hello* hello) {
    Checks checks;
    checks << fields.string("session", kSessionTextLength, kSessionTextLength, hello->session);
    if (checks.status() == V1Status::kOk && !is_uuid_text(hello->session, kSessionTextLength)) {
        checks << V1Status::kBadField;
    }
    checks << fields.uint32("version", 1, &hello->version);
    checks << fields.string("device", 1, kMaxDeviceLength, hello->device);
    if (checks.status() == V1Status::kOk) {
        for (const char* c = hello->device; *c != '\0'; ++c) {
            if (!is_printable_ascii(*c)) {
                checks << V1Status::kBadField;
                break;
            }
        }
    }
    checks << fields.seq("last_downlink", 0, &hello->last_downlink);
    checks << fields.seq("oldest_uplink", 0, &hello->oldest_uplink);
    checks << fields.seq("next_uplink", 0, &hello->next_uplink);
    checks << fields.features(&hello->features);
    hello->desired_version = 0;
    if (fields.has("desired_version")) {
        checks << fields.seq("desired_version", 0, &hello->desired_version);
    }
    return checks.status();
}

V1Status parse_welcome(const FieldReader& fields, Welcome* welcome) {
    Checks checks;
    checks << fields.string("session", kSessionTextLength, kSessionTextLength, welcome->session);
    if (checks.status() == V1Status::kOk && !is_uuid_text(welcome->session, kSessionTextLength)) {
        checks << V1Status::kBadField;
    }
    checks << fields.boolean("resumed", &welcome->resumed);
    checks << fields.seq("last_uplink", 0, &welcome->last_uplink);
    checks << fields.uint32("ack_every", 0, &welcome->ack_every);
    checks << fields.uint32("ack_interval_ms", 0, &welcome->ack_interval_ms);
    checks << fields.features(&welcome->features);
    return checks.status();
}

V1Status parse_gap(const FieldReader& fields, Gap* gap) {
    Checks checks;
    checks << fields.seq("first", 1, &gap->first);
    checks << fields.seq("last", 0, &gap->last);
    if (checks.status() == V1Status::kOk && gap->last < gap->first) {
        checks << V1Status::kBadField;
    }
    gap->reason[0] = '\0';
    if (fields.has("reason")) {
        checks << fields.string("reason", 0, kMaxReasonLength, gap->reason);
    }
    return checks.status();
}

V1Status parse_error(const FieldReader& fields, Error* error) {
    Checks checks;
    std::uint64_t code = 0;
    checks << fields.unsigned_integer("code", 1000, 4999, &code);
    error->code = static_cast<std::uint16_t>(code);
    checks << fields.string("message", 0, kMaxErrorMessageLength, error->message);
    return checks.status();
}

// --- Writing ------------------------------------------------------------------

using json::Writer;

// ,"features":[...] for the known bits set; nothing when none is.
void write_features(Writer& writer, std::uint32_t bits) {
    if (bits == 0) {
        return;
    }
    writer.raw(",\"features\":[");
    const char* separator = "";
    if ((bits & kFeatureAge) != 0) {
        writer.raw(separator).quoted(kFeatureAgeName, std::strlen(kFeatureAgeName));
        separator = ",";
    }
    if ((bits & kFeatureState) != 0) {
        writer.raw(separator).quoted(kFeatureStateName, std::strlen(kFeatureStateName));
    }
    writer.raw("]");
}

}  // namespace

const char* to_string(V1Status status) {
    switch (status) {
        case V1Status::kOk:
            return "ok";
        case V1Status::kBufferTooSmall:
            return "buffer_too_small";
        case V1Status::kTooShort:
            return "too_short";
        case V1Status::kUnknownKind:
            return "unknown_kind";
        case V1Status::kBadFlags:
            return "bad_flags";
        case V1Status::kNotJson:
            return "not_json";
        case V1Status::kUnknownType:
            return "unknown_type";
        case V1Status::kMissingField:
            return "missing_field";
        case V1Status::kBadField:
            return "bad_field";
        case V1Status::kInvalidArgument:
            return "invalid_argument";
    }
    return "unknown";
}

void write_data_header(std::uint64_t seq, std::uint8_t out[kHeaderSize]) {
    write_header(Kind::kData, seq, out);
}

void write_aged_data_header(std::uint64_t seq, std::uint32_t age_ms,
                            std::uint8_t out[kAgedDataHeaderSize]) {
    write_header(Kind::kData, seq, out);
    out[kFlagsOffset] = kFlagAge;
    const std::uint32_t age = age_ms < kMaxAgeMs ? age_ms : kMaxAgeMs;
    for (std::size_t i = 0; i < 4; ++i) {
        out[kAgeOffset + i] = static_cast<std::uint8_t>(age >> (24 - 8 * i));
    }
}

void write_ack(std::uint64_t seq, std::uint8_t out[kHeaderSize]) {
    write_header(Kind::kAck, seq, out);
}

V1Status decode_binary(const std::uint8_t* data, std::size_t size, BinaryMessage* out,
                       std::uint32_t features) {
    if (size < kHeaderSize) {
        return V1Status::kTooShort;
    }
    const std::uint8_t kind = data[0];
    if (kind != static_cast<std::uint8_t>(Kind::kData) &&
        kind != static_cast<std::uint8_t>(Kind::kAck)) {
        return V1Status::kUnknownKind;
    }
    if (kind == static_cast<std::uint8_t>(Kind::kAck) && size != kHeaderSize) {
        return V1Status::kTooShort;
    }
    // Only a DATA on a connection that negotiated "age" may set a flag.
    const bool age_allowed =
        kind == static_cast<std::uint8_t>(Kind::kData) && (features & kFeatureAge) != 0;
    const std::uint8_t allowed = age_allowed ? kFlagAge : 0;
    const std::uint8_t flags = data[kFlagsOffset];
    if ((flags & ~allowed) != 0) {
        return V1Status::kBadFlags;
    }
    const bool has_age = (flags & kFlagAge) != 0;
    const std::size_t header_size = has_age ? kAgedDataHeaderSize : kHeaderSize;
    if (size < header_size) {
        return V1Status::kTooShort;
    }
    out->kind = static_cast<Kind>(kind);
    out->seq = read_seq(data);
    out->has_age = has_age;
    out->age_ms = has_age ? read_age(data) : 0;
    if (out->kind == Kind::kData) {
        out->payload = data + header_size;
        out->payload_size = size - header_size;
    } else {
        out->payload = nullptr;
        out->payload_size = 0;
    }
    return V1Status::kOk;
}

V1Status parse_control(const std::uint8_t* json, std::size_t size, Control* out) {
    if (size == 0 || size > kMaxControlSize) {
        return V1Status::kNotJson;
    }
    const json::Tree document(json::parse_one(reinterpret_cast<const char*>(json), size));
    const cJSON* root = document.get();
    if (root == nullptr || !cJSON_IsObject(root)) {
        return V1Status::kNotJson;
    }
    const cJSON* type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(type) || type->valuestring == nullptr) {
        return V1Status::kUnknownType;
    }
    const FieldReader fields(root);
    const char* name = type->valuestring;
    if (std::strcmp(name, "hello") == 0) {
        out->type = ControlType::kHello;
        return parse_hello(fields, &out->hello);
    }
    if (std::strcmp(name, "welcome") == 0) {
        out->type = ControlType::kWelcome;
        return parse_welcome(fields, &out->welcome);
    }
    if (std::strcmp(name, "gap") == 0) {
        out->type = ControlType::kGap;
        return parse_gap(fields, &out->gap);
    }
    if (std::strcmp(name, "error") == 0) {
        out->type = ControlType::kError;
        return parse_error(fields, &out->error);
    }
    return V1Status::kUnknownType;
}

V1Status write_hello(const Hello& hello, char* out, std::size_t capacity, std::size_t* length) {
    const std::size_t session_length = field_length(hello.session, sizeof hello.session);
    const std::size_t device_length = field_length(hello.device, sizeof hello.device);
    if (!is_uuid_text(hello.session, session_length) || hello.version == 0 || device_length == 0 ||
        device_length > kMaxDeviceLength || !is_plain_text(hello.device, device_length) ||
        hello.last_downlink > kMaxJsonSeq || hello.oldest_uplink > kMaxJsonSeq ||
        hello.next_uplink > kMaxJsonSeq || (hello.features & ~kKnownFeatures) != 0 ||
        hello.desired_version > kMaxJsonSeq) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"hello\",\"session\":")
        .quoted(hello.session, session_length)
        .raw(",\"version\":")
        .number(hello.version)
        .raw(",\"device\":")
        .quoted(hello.device, device_length)
        .raw(",\"last_downlink\":")
        .number(hello.last_downlink)
        .raw(",\"oldest_uplink\":")
        .number(hello.oldest_uplink)
        .raw(",\"next_uplink\":")
        .number(hello.next_uplink);
    write_features(writer, hello.features);
    if ((hello.features & kFeatureState) != 0) {
        writer.raw(",\"desired_version\":").number(hello.desired_version);
    }
    writer.raw("}");
    return writer.finish(length);
}

V1Status write_welcome(const Welcome& welcome, char* out, std::size_t capacity,
                       std::size_t* length) {
    const std::size_t session_length = field_length(welcome.session, sizeof welcome.session);
    if (!is_uuid_text(welcome.session, session_length) || welcome.last_uplink > kMaxJsonSeq ||
        (welcome.features & ~kKnownFeatures) != 0) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"welcome\",\"session\":")
        .quoted(welcome.session, session_length)
        .raw(",\"resumed\":")
        .boolean(welcome.resumed)
        .raw(",\"last_uplink\":")
        .number(welcome.last_uplink)
        .raw(",\"ack_every\":")
        .number(welcome.ack_every)
        .raw(",\"ack_interval_ms\":")
        .number(welcome.ack_interval_ms);
    write_features(writer, welcome.features);
    writer.raw("}");
    return writer.finish(length);
}

V1Status write_gap(const Gap& gap, char* out, std::size_t capacity, std::size_t* length) {
    const std::size_t reason_length = field_length(gap.reason, sizeof gap.reason);
    if (gap.first == 0 || gap.last < gap.first || gap.last > kMaxJsonSeq ||
        reason_length > kMaxReasonLength || !is_plain_text(gap.reason, reason_length)) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"gap\",\"first\":").number(gap.first).raw(",\"last\":").number(gap.last);
    // The reason is optional on the wire; an empty one is left out.
    if (reason_length > 0) {
        writer.raw(",\"reason\":").quoted(gap.reason, reason_length);
    }
    writer.raw("}");
    return writer.finish(length);
}

V1Status write_error(const Error& error, char* out, std::size_t capacity, std::size_t* length) {
    const std::size_t message_length = field_length(error.message, sizeof error.message);
    if (!is_error_code(error.code) || message_length > kMaxErrorMessageLength ||
        !is_plain_text(error.message, message_length)) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"error\",\"code\":")
        .number(error.code)
        .raw(",\"message\":")
        .quoted(error.message, message_length)
        .raw("}");
    return writer.finish(length);
}

namespace {

constexpr std::uint32_t kMaxRetryAfterSeconds = 86400;

bool is_reason_separator(std::uint8_t c) {
    return c == ' ' || c == '\t' || c == ',' || c == ';';
}

// "retry_after=" followed by 1+ decimal digits worth at most 86400, and
// nothing else in the token.
bool parse_retry_after_token(const std::uint8_t* token, std::size_t length,
                             std::uint32_t* seconds) {
    static constexpr char kPrefix[] = "retry_after=";
    constexpr std::size_t kPrefixLength = sizeof kPrefix - 1;
    if (length <= kPrefixLength || std::memcmp(token, kPrefix, kPrefixLength) != 0) {
        return false;
    }
    std::uint32_t value = 0;
    for (std::size_t i = kPrefixLength; i < length; ++i) {
        if (token[i] < '0' || token[i] > '9') {
            return false;
        }
        value = value * 10 + static_cast<std::uint32_t>(token[i] - '0');
        // Checked per digit, so a long run of digits cannot overflow.
        if (value > kMaxRetryAfterSeconds) {
            return false;
        }
    }
    *seconds = value;
    return true;
}

}  // namespace

bool parse_retry_after_reason(const std::uint8_t* reason, std::size_t size,
                              std::uint32_t* seconds) {
    std::size_t start = 0;
    while (start < size) {
        if (is_reason_separator(reason[start])) {
            ++start;
            continue;
        }
        std::size_t end = start;
        while (end < size && !is_reason_separator(reason[end])) {
            ++end;
        }
        if (parse_retry_after_token(reason + start, end - start, seconds)) {
            return true;
        }
        start = end;
    }
    return false;
}

}  // namespace tether::net::v1

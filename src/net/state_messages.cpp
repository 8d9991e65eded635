// SPDX-License-Identifier: MIT
#include "tether/net/state_messages.h"

#include <cjson/cJSON.h>

#include <cstring>

#include "json_tree.h"

namespace tether::net::v1 {
namespace {

struct TypeName {
    const char* name;
    StateType type;
};

constexpr TypeName kTypes[] = {
    {"desired", StateType::kDesired},
    {"applied", StateType::kApplied},
    {"report", StateType::kReport},
    {"report_ok", StateType::kReportOk},
    {"report_refused", StateType::kReportRefused},
};

bool is_plain_text(const char* text, std::size_t length) {
    for (std::size_t i = 0; i < length; ++i) {
        const char c = text[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

// Reads one member of the message object; every reader returns
// kMissingField when it is absent and kBadField when it has the wrong type or
// range, like the other control messages' parser.
// The members of a state message: json::Fields plus the report id and the
// document.
class Members : public json::Fields {
  public:
    using json::Fields::Fields;

    V1Status id(char* out) const {
        const V1Status status = string("id", 0, kReportIdLength, out);
        if (status != V1Status::kOk) {
            return status;
        }
        return is_report_id(out, std::strlen(out)) ? V1Status::kOk : V1Status::kBadField;
    }

    // Exactly one of "state" and "patch"; *whole says which. The document is
    // checked like compact_object and copied out compact.
    V1Status document(bool* whole, char* out, std::size_t capacity, std::size_t* length) const {
        const cJSON* state = get("state");
        const cJSON* patch = get("patch");
        if ((state == nullptr) == (patch == nullptr)) {
            return state == nullptr ? V1Status::kMissingField : V1Status::kBadField;
        }
        *whole = state != nullptr;
        return copy_document(state != nullptr ? state : patch, out, capacity, length);
    }

    static V1Status copy_document(const cJSON* item, char* out, std::size_t capacity,
                                  std::size_t* length) {
        if (!cJSON_IsObject(item) || !json::well_formed(item)) {
            return V1Status::kBadField;
        }
        std::size_t size = 0;
        const std::size_t room = capacity < kMaxStateDocument ? capacity : kMaxStateDocument;
        const V1Status status = json::print_compact(item, out, room, &size);
        if (status == V1Status::kBufferTooSmall && room == kMaxStateDocument) {
            return V1Status::kBadField;  // larger than any document may be
        }
        if (status == V1Status::kOk) {
            *length = size;
        }
        return status;
    }
};

using json::Checks;

using json::Writer;

bool valid_document_argument(const char* document, std::size_t size) {
    return document != nullptr && size >= 2 && size <= kMaxStateDocument && document[0] == '{' &&
           document[size - 1] == '}';
}

bool valid_id_argument(const char* id) {
    return id != nullptr && is_report_id(id, std::strlen(id));
}

}  // namespace

bool is_report_id(const char* text, std::size_t length) {
    if (length != kReportIdLength) {
        return false;
    }
    for (std::size_t i = 0; i < length; ++i) {
        const char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

V1Status parse_state_message(const std::uint8_t* json, std::size_t size, StateMessage* out,
                             char* document, std::size_t capacity) {
    if (json == nullptr || size == 0 || size > kMaxStateMessage) {
        return V1Status::kNotJson;
    }
    const json::Tree tree(json::parse_one(reinterpret_cast<const char*>(json), size));
    if (tree.get() == nullptr || !cJSON_IsObject(tree.get())) {
        return V1Status::kNotJson;
    }
    const Members members(tree.get());
    const cJSON* type = members.get("type");
    if (!cJSON_IsString(type) || type->valuestring == nullptr) {
        return V1Status::kUnknownType;
    }
    const TypeName* found = nullptr;
    for (const TypeName& candidate : kTypes) {
        if (std::strcmp(candidate.name, type->valuestring) == 0) {
            found = &candidate;
        }
    }
    if (found == nullptr) {
        return V1Status::kUnknownType;
    }

    StateMessage message;
    message.type = found->type;
    Checks checks;
    switch (message.type) {
        case StateType::kDesired: {
            checks << members.seq("version", 1, &message.version);
            bool snapshot = false;
            checks << members.boolean("snapshot", &snapshot);
            checks << members.document(&message.whole, document, capacity, &message.document_size);
            if (checks.status() == V1Status::kOk && snapshot != message.whole) {
                checks << V1Status::kBadField;
            }
            break;
        }
        case StateType::kApplied:
            checks << members.seq("version", 1, &message.version);
            break;
        case StateType::kReport:
            checks << members.id(message.id);
            checks << members.seq("base", 0, &message.base);
            checks << members.document(&message.whole, document, capacity, &message.document_size);
            break;
        case StateType::kReportOk:
            checks << members.id(message.id);
            checks << members.seq("version", 1, &message.version);
            break;
        case StateType::kReportRefused: {
            checks << members.id(message.id);
            checks << members.string("reason", 0, kMaxReasonLength, message.reason);
            checks << members.seq("version", 0, &message.version);
            const cJSON* state = members.get("state");
            if (state != nullptr) {
                message.whole = true;
                checks << Members::copy_document(state, document, capacity, &message.document_size);
            }
            break;
        }
    }
    if (checks.status() != V1Status::kOk) {
        return checks.status();
    }
    *out = message;
    return V1Status::kOk;
}

V1Status write_desired(std::uint64_t version, bool snapshot, const char* document,
                       std::size_t document_size, char* out, std::size_t capacity,
                       std::size_t* length) {
    if (version == 0 || version > kMaxJsonSeq ||
        !valid_document_argument(document, document_size)) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"desired\",\"version\":")
        .number(version)
        .raw(snapshot ? ",\"snapshot\":true,\"state\":" : ",\"snapshot\":false,\"patch\":")
        .bytes(document, document_size)
        .raw("}");
    return writer.finish(length);
}

V1Status write_applied(std::uint64_t version, char* out, std::size_t capacity,
                       std::size_t* length) {
    if (version == 0 || version > kMaxJsonSeq) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"applied\",\"version\":").number(version).raw("}");
    return writer.finish(length);
}

V1Status write_report(const char* id, std::uint64_t base, bool whole, const char* document,
                      std::size_t document_size, char* out, std::size_t capacity,
                      std::size_t* length) {
    if (!valid_id_argument(id) || base > kMaxJsonSeq ||
        !valid_document_argument(document, document_size)) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"report\",\"id\":")
        .quoted(id, std::strlen(id))
        .raw(",\"base\":")
        .number(base)
        .raw(whole ? ",\"state\":" : ",\"patch\":")
        .bytes(document, document_size)
        .raw("}");
    return writer.finish(length);
}

V1Status write_report_ok(const char* id, std::uint64_t version, char* out, std::size_t capacity,
                         std::size_t* length) {
    if (!valid_id_argument(id) || version == 0 || version > kMaxJsonSeq) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"report_ok\",\"id\":")
        .quoted(id, std::strlen(id))
        .raw(",\"version\":")
        .number(version)
        .raw("}");
    return writer.finish(length);
}

V1Status write_report_refused(const char* id, const char* reason, std::uint64_t version,
                              const char* document, std::size_t document_size, char* out,
                              std::size_t capacity, std::size_t* length) {
    const std::size_t reason_length = reason != nullptr ? std::strlen(reason) : 0;
    if (!valid_id_argument(id) || reason_length == 0 || reason_length > kMaxReasonLength ||
        !is_plain_text(reason, reason_length) || version > kMaxJsonSeq ||
        (document != nullptr && !valid_document_argument(document, document_size)) ||
        (document == nullptr && document_size != 0)) {
        return V1Status::kInvalidArgument;
    }
    Writer writer(out, capacity);
    writer.raw("{\"type\":\"report_refused\",\"id\":")
        .quoted(id, std::strlen(id))
        .raw(",\"reason\":")
        .quoted(reason, reason_length)
        .raw(",\"version\":")
        .number(version);
    if (document != nullptr) {
        writer.raw(",\"state\":").bytes(document, document_size);
    }
    writer.raw("}");
    return writer.finish(length);
}

}  // namespace tether::net::v1

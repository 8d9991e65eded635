// SPDX-License-Identifier: MIT
#include "tether/net/json_document.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "json_tree.h"

namespace tether::net::v1 {
namespace {

using json::Tree;

// A key that appears twice in one object makes "the" value of that key
// depend on the parser, so such a document is refused outright.
bool has_duplicate_key(const cJSON* object) {
    for (const cJSON* a = object->child; a != nullptr; a = a->next) {
        for (const cJSON* b = a->next; b != nullptr; b = b->next) {
            if (std::strcmp(a->string, b->string) == 0) {
                return true;
            }
        }
    }
    return false;
}

bool well_formed_at(const cJSON* item, int depth) {
    const bool object = cJSON_IsObject(item);
    if (!object && !cJSON_IsArray(item)) {
        return true;
    }
    if (depth > kMaxStateDepth || (object && has_duplicate_key(item))) {
        return false;
    }
    for (const cJSON* child = item->child; child != nullptr; child = child->next) {
        if (!well_formed_at(child, depth + 1)) {
            return false;
        }
    }
    return true;
}

using json::Writer;

void print_string(const char* text, Writer* out) {
    static const char kHex[] = "0123456789abcdef";
    out->character('"');
    for (const char* p = text; *p != '\0'; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if (c == '"' || c == '\\') {
            const char escaped[2] = {'\\', static_cast<char>(c)};
            out->bytes(escaped, 2);
        } else if (c < 0x20) {
            const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
            out->bytes(escaped, 6);
        } else {
            out->character(static_cast<char>(c));
        }
    }
    out->character('"');
}

bool print_number(double value, Writer* out) {
    if (!std::isfinite(value)) {
        return false;
    }
    char text[32];
    constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
    if (value == std::floor(value) && std::fabs(value) < kExactIntegers) {
        std::snprintf(text, sizeof text, "%lld", static_cast<long long>(value));
    } else {
        // The shortest of 15, 16 and 17 significant digits that reads back
        // as the same double (17 always does).
        for (int digits = 15; digits <= 17; ++digits) {
            std::snprintf(text, sizeof text, "%.*g", digits, value);
            if (std::strtod(text, nullptr) == value) {
                break;
            }
        }
    }
    out->raw(text);
    return true;
}

bool print_item(const cJSON* item, Writer* out) {
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        const bool object = cJSON_IsObject(item);
        out->character(object ? '{' : '[');
        for (const cJSON* child = item->child; child != nullptr; child = child->next) {
            if (child != item->child) {
                out->character(',');
            }
            if (object) {
                print_string(child->string, out);
                out->character(':');
            }
            if (!print_item(child, out)) {
                return false;
            }
        }
        out->character(object ? '}' : ']');
        return true;
    }
    if (cJSON_IsString(item)) {
        print_string(item->valuestring != nullptr ? item->valuestring : "", out);
        return true;
    }
    if (cJSON_IsNumber(item)) {
        return print_number(item->valuedouble, out);
    }
    if (cJSON_IsTrue(item)) {
        out->raw("true");
    } else if (cJSON_IsFalse(item)) {
        out->raw("false");
    } else {
        out->raw("null");
    }
    return true;
}

// Parses `text` as exactly one JSON object that passes well_formed(). An
// empty text stands for "{}" only where `empty_is_object` says so.
V1Status parse_object(const char* text, std::size_t size, bool empty_is_object, Tree* out) {
    if (size == 0 && empty_is_object) {
        out->reset(cJSON_CreateObject());
        return out->get() != nullptr ? V1Status::kOk : V1Status::kBufferTooSmall;
    }
    if (text == nullptr || size == 0) {
        return V1Status::kNotJson;
    }
    Tree tree(json::parse_one(text, size));
    if (tree.get() == nullptr) {
        return V1Status::kNotJson;
    }
    if (!cJSON_IsObject(tree.get()) || !well_formed_at(tree.get(), 1)) {
        return V1Status::kBadField;
    }
    out->reset(tree.release());
    return V1Status::kOk;
}

// RFC 7396 section 2, on trees: `target` is an object; `patch` an object.
// Returns false only when cJSON cannot allocate.
bool merge_into(cJSON* target, const cJSON* patch) {
    for (const cJSON* change = patch->child; change != nullptr; change = change->next) {
        if (cJSON_IsNull(change)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, change->string);
            continue;
        }
        cJSON* existing = cJSON_GetObjectItemCaseSensitive(target, change->string);
        if (cJSON_IsObject(change)) {
            if (!cJSON_IsObject(existing)) {
                cJSON* fresh = cJSON_CreateObject();
                if (fresh == nullptr) {
                    return false;
                }
                if (existing != nullptr) {
                    cJSON_ReplaceItemInObjectCaseSensitive(target, change->string, fresh);
                } else {
                    cJSON_AddItemToObject(target, change->string, fresh);
                }
                existing = fresh;
            }
            if (!merge_into(existing, change)) {
                return false;
            }
            continue;
        }
        cJSON* copy = cJSON_Duplicate(change, 1);
        if (copy == nullptr) {
            return false;
        }
        if (existing != nullptr) {
            cJSON_ReplaceItemInObjectCaseSensitive(target, change->string, copy);
        } else {
            cJSON_AddItemToObject(target, change->string, copy);
        }
    }
    return true;
}

// Removes from `desired` every member `reported` already matches; what is
// left is the delta.
void subtract(cJSON* desired, const cJSON* reported) {
    cJSON* member = desired->child;
    while (member != nullptr) {
        cJSON* next = member->next;
        const cJSON* other = cJSON_GetObjectItemCaseSensitive(reported, member->string);
        if (other != nullptr) {
            if (cJSON_IsObject(member) && cJSON_IsObject(other)) {
                subtract(member, other);
                if (member->child == nullptr) {
                    cJSON_Delete(cJSON_DetachItemViaPointer(desired, member));
                }
            } else if (cJSON_Compare(member, other, 1) != 0) {
                cJSON_Delete(cJSON_DetachItemViaPointer(desired, member));
            }
        }
        member = next;
    }
}

}  // namespace

namespace json {

bool well_formed(const cJSON* item) {
    return well_formed_at(item, 1);
}

V1Status print_compact(const cJSON* item, char* out, std::size_t capacity, std::size_t* length) {
    Writer output(out, capacity);
    if (!print_item(item, &output)) {
        return V1Status::kBadField;
    }
    if (output.overflow()) {
        return V1Status::kBufferTooSmall;
    }
    *length = output.length();
    return V1Status::kOk;
}

}  // namespace json

V1Status compact_object(const char* text, std::size_t size, char* out, std::size_t capacity,
                        std::size_t* length) {
    Tree tree;
    const V1Status parsed = parse_object(text, size, false, &tree);
    if (parsed != V1Status::kOk) {
        return parsed;
    }
    return json::print_compact(tree.get(), out, capacity, length);
}

V1Status apply_merge_patch(const char* document, std::size_t document_size, const char* patch,
                           std::size_t patch_size, char* out, std::size_t capacity,
                           std::size_t* length) {
    Tree target;
    Tree changes;
    V1Status status = parse_object(document, document_size, true, &target);
    if (status != V1Status::kOk) {
        return status;
    }
    status = parse_object(patch, patch_size, false, &changes);
    if (status != V1Status::kOk) {
        return status;
    }
    if (!merge_into(target.get(), changes.get())) {
        return V1Status::kBufferTooSmall;
    }
    return json::print_compact(target.get(), out, capacity, length);
}

V1Status state_delta(const char* desired, std::size_t desired_size, const char* reported,
                     std::size_t reported_size, char* out, std::size_t capacity,
                     std::size_t* length) {
    Tree want;
    Tree have;
    V1Status status = parse_object(desired, desired_size, true, &want);
    if (status != V1Status::kOk) {
        return status;
    }
    status = parse_object(reported, reported_size, true, &have);
    if (status != V1Status::kOk) {
        return status;
    }
    subtract(want.get(), have.get());
    return json::print_compact(want.get(), out, capacity, length);
}

}  // namespace tether::net::v1

// SPDX-License-Identifier: MIT
#include <cstring>
#include <string>

// CppUTest redefines operator new: it comes after the standard headers.
#include <CppUTest/TestHarness.h>

#include "tether/net/json_document.h"

using namespace tether::net::v1;

namespace {

struct Result {
    V1Status status;
    std::string text;
};

Result merge(const std::string& document, const std::string& patch,
             std::size_t capacity = kMaxStateDocument) {
    std::string out(capacity, '\0');
    std::size_t length = 0;
    const V1Status status = apply_merge_patch(document.data(), document.size(), patch.data(),
                                              patch.size(), &out[0], capacity, &length);
    return {status, status == V1Status::kOk ? out.substr(0, length) : std::string()};
}

Result compact(const std::string& text, std::size_t capacity = kMaxStateDocument) {
    std::string out(capacity, '\0');
    std::size_t length = 0;
    const V1Status status = compact_object(text.data(), text.size(), &out[0], capacity, &length);
    return {status, status == V1Status::kOk ? out.substr(0, length) : std::string()};
}

Result delta(const std::string& desired, const std::string& reported) {
    std::string out(kMaxStateDocument, '\0');
    std::size_t length = 0;
    const V1Status status = state_delta(desired.data(), desired.size(), reported.data(),
                                        reported.size(), &out[0], out.size(), &length);
    return {status, status == V1Status::kOk ? out.substr(0, length) : std::string()};
}

std::string nested(int depth) {
    std::string text;
    for (int i = 0; i < depth; ++i) {
        text += "{\"a\":";
    }
    text += "1";
    for (int i = 0; i < depth; ++i) {
        text += "}";
    }
    return text;
}

}  // namespace

TEST_GROUP(JsonMergePatch){};

// RFC 7396 appendix A, the objects among its examples (a document here is
// always an object, so the examples whose target or patch is not are left out).
TEST(JsonMergePatch, FollowsTheRfcExamples) {
    STRCMP_EQUAL("{\"a\":\"c\"}", merge("{\"a\":\"b\"}", "{\"a\":\"c\"}").text.c_str());
    STRCMP_EQUAL("{\"a\":\"b\",\"b\":\"c\"}", merge("{\"a\":\"b\"}", "{\"b\":\"c\"}").text.c_str());
    STRCMP_EQUAL("{}", merge("{\"a\":\"b\"}", "{\"a\":null}").text.c_str());
    STRCMP_EQUAL("{\"b\":\"c\"}", merge("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}").text.c_str());
    STRCMP_EQUAL("{\"a\":\"c\"}", merge("{\"a\":[\"b\"]}", "{\"a\":\"c\"}").text.c_str());
    STRCMP_EQUAL("{\"a\":[\"b\"]}", merge("{\"a\":\"c\"}", "{\"a\":[\"b\"]}").text.c_str());
    STRCMP_EQUAL("{\"a\":{\"b\":\"d\"}}",
                 merge("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}").text.c_str());
    STRCMP_EQUAL("{\"a\":[1]}", merge("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}").text.c_str());
    STRCMP_EQUAL("{\"e\":null,\"a\":1}", merge("{\"e\":null}", "{\"a\":1}").text.c_str());
    STRCMP_EQUAL("{\"a\":{\"bb\":{}}}",
                 merge("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}").text.c_str());
}

TEST(JsonMergePatch, KeepsArraysAndNumbersExactly) {
    STRCMP_EQUAL("{\"list\":[],\"big\":9007199254740991,\"f\":0.5}",
                 merge("", "{\"list\":[],\"big\":9007199254740991,\"f\":0.5}").text.c_str());
}

TEST(JsonMergePatch, AnEmptyDocumentIsTheEmptyObject) {
    STRCMP_EQUAL("{\"rate\":10}", merge("", "{\"rate\":10}").text.c_str());
}

TEST(JsonMergePatch, RefusesWhatIsNotOneValidObject) {
    CHECK(merge("{}", "[1]").status == V1Status::kBadField);
    CHECK(merge("{}", "3").status == V1Status::kBadField);
    CHECK(merge("{}", "{\"a\":1} x").status == V1Status::kNotJson);
    CHECK(merge("{}", "{\"a\":").status == V1Status::kNotJson);
    CHECK(merge("{}", "").status == V1Status::kNotJson);
    CHECK(merge("{\"a\":1,\"a\":2}", "{}").status == V1Status::kBadField);
    CHECK(merge("{}", "{\"x\":{\"a\":1,\"a\":2}}").status == V1Status::kBadField);
}

TEST(JsonMergePatch, SaysWhenTheResultDoesNotFit) {
    CHECK(merge("{\"a\":\"0123456789\"}", "{\"b\":1}", 20).status == V1Status::kBufferTooSmall);
    CHECK(merge("{\"a\":\"0123456789\"}", "{\"b\":1}", 24).status == V1Status::kOk);
}

TEST_GROUP(JsonCompact){};

TEST(JsonCompact, RemovesWhitespaceOutsideStrings) {
    STRCMP_EQUAL("{\"a b\":[1,2],\"c\":{\"d\":true}}",
                 compact(" { \"a b\" : [ 1 , 2 ] ,\n \"c\" : { \"d\" : true } } ").text.c_str());
}

TEST(JsonCompact, BoundsTheNesting) {
    CHECK(compact(nested(kMaxStateDepth)).status == V1Status::kOk);
    CHECK(compact(nested(kMaxStateDepth + 1)).status == V1Status::kBadField);
}

TEST(JsonCompact, ExactCapacityFitsAndOneLessDoesNot) {
    const std::string text = "{\"a\":1}";
    CHECK(compact(text, text.size()).status == V1Status::kOk);
    CHECK(compact(text, text.size() - 1).status == V1Status::kBufferTooSmall);
}

TEST_GROUP(JsonStateDelta){};

TEST(JsonStateDelta, NamesWhatReportedDoesNotMatchYet) {
    STRCMP_EQUAL("{\"rate\":10,\"sensors\":{\"b\":true}}",
                 delta("{\"rate\":10,\"mode\":\"eco\",\"sensors\":{\"a\":true,\"b\":true}}",
                       "{\"rate\":5,\"mode\":\"eco\",\"sensors\":{\"a\":true},\"uptime\":3}")
                     .text.c_str());
}

TEST(JsonStateDelta, IsEmptyWhenTheyAgree) {
    STRCMP_EQUAL(
        "{}", delta("{\"a\":[1,2],\"b\":{\"c\":1}}", "{\"b\":{\"c\":1},\"a\":[1,2]}").text.c_str());
    STRCMP_EQUAL("{}", delta("", "{\"x\":1}").text.c_str());
}

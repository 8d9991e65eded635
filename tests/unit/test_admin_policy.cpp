// SPDX-License-Identifier: MIT
// tether-server's admin rules: the token, its check, which connection gives way.
#include <cstdint>
#include <string>

#include "tether/server/admin_policy.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::server::admin_request_authorized;
using tether::server::admin_victim;
using tether::server::AdminSlot;
using tether::server::format_admin_token;
using tether::server::is_valid_admin_token;
using tether::server::kNoAdminVictim;

namespace {

constexpr const char* kToken = "0123456789abcdef0123456789abcdef";

std::string request(const std::string& headers) {
    return "POST /faults/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "Content-Length: 0";
}

}  // namespace

TEST_GROUP(AdminPolicy){};

TEST(AdminPolicy, AGeneratedTokenIsTheHexOfItsRandomBytes) {
    std::uint8_t random[32];
    for (std::size_t i = 0; i < sizeof random; ++i) {
        random[i] = static_cast<std::uint8_t>(i * 37u + 5u);
    }
    char token[65];
    format_admin_token(random, token);
    STRCMP_EQUAL("052a4f74", std::string(token, 8).c_str());
    UNSIGNED_LONGS_EQUAL(64, std::string(token).size());
    CHECK_TRUE(is_valid_admin_token(token));
}

TEST(AdminPolicy, TokensAreSixteenToFiveHundredTwelveVisibleCharacters) {
    CHECK_FALSE(is_valid_admin_token(""));
    CHECK_FALSE(is_valid_admin_token("fifteen-chars-x"));
    CHECK_TRUE(is_valid_admin_token("sixteen-chars-xx"));
    CHECK_TRUE(is_valid_admin_token(std::string(512, 'a')));
    CHECK_FALSE(is_valid_admin_token(std::string(513, 'a')));
    CHECK_FALSE(is_valid_admin_token("sixteen chars xx"));
    CHECK_FALSE(is_valid_admin_token("sixteen-chars-x\x7f"));
    CHECK_FALSE(is_valid_admin_token("sixteen-chars-x\n"));
}

TEST(AdminPolicy, ARequestIsAuthorizedByItsBearerToken) {
    CHECK_TRUE(admin_request_authorized(
        request("Authorization: Bearer " + std::string(kToken) + "\r\n"), kToken));
    CHECK_TRUE(admin_request_authorized(
        request("authorization:bearer\t " + std::string(kToken) + "  \r\n"), kToken));
    CHECK_TRUE(admin_request_authorized(
        request("AUTHORIZATION: BEARER " + std::string(kToken) + "\r\n"), kToken));
}

TEST(AdminPolicy, AnythingElseIsNot) {
    const std::string right = "Authorization: Bearer " + std::string(kToken) + "\r\n";
    CHECK_FALSE(admin_request_authorized(request(""), kToken));
    CHECK_FALSE(admin_request_authorized(request("Authorization: Bearer\r\n"), kToken));
    CHECK_FALSE(admin_request_authorized(
        request("Authorization: Basic " + std::string(kToken) + "\r\n"), kToken));
    CHECK_FALSE(admin_request_authorized(
        request("Authorization: Bearer" + std::string(kToken) + "\r\n"), kToken));
    CHECK_FALSE(admin_request_authorized(
        request("Authorization: Bearer " + std::string(kToken) + "0\r\n"), kToken));
    CHECK_FALSE(admin_request_authorized(
        request("Authorization: Bearer " + std::string(kToken).substr(1) + "\r\n"), kToken));
    CHECK_FALSE(admin_request_authorized(
        request("X-Authorization: Bearer " + std::string(kToken) + "\r\n"), kToken));
    CHECK_FALSE(admin_request_authorized(request(right + right), kToken));  // repeated
    CHECK_FALSE(admin_request_authorized(request("Authorization: Bearer \r\n"), ""));
    // The request line is not a header, even when it looks like one.
    CHECK_FALSE(admin_request_authorized(
        "Authorization: Bearer " + std::string(kToken) + "\r\nHost: x", kToken));
}

TEST(AdminPolicy, TheIdleConnectionOpenLongestGivesWay) {
    const AdminSlot slots[] = {{100, false}, {200, true}, {150, true}, {50, false}, {300, true}};
    UNSIGNED_LONGS_EQUAL(2, admin_victim(slots, 5, 1000));
    // Ages, not raw times: across a wrap-around too.
    const AdminSlot wrapped[] = {{0xFFFFFF00u, true}, {0x10u, true}};
    UNSIGNED_LONGS_EQUAL(0, admin_victim(wrapped, 2, 0x20u));
    const AdminSlot busy[] = {{1, false}, {2, false}};
    UNSIGNED_LONGS_EQUAL(kNoAdminVictim, admin_victim(busy, 2, 10));
    UNSIGNED_LONGS_EQUAL(kNoAdminVictim, admin_victim(nullptr, 0, 10));
}

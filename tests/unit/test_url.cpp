// SPDX-License-Identifier: MIT
#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>

#include "support/tether_strings.h"
#include "tether/net/url.h"

using tether::net::parse_ws_url;
using tether::net::UrlStatus;
using tether::net::WsUrl;

TEST_GROUP(WsUrl){};

TEST(WsUrl, PlainUrlGetsTheDefaultPortAndPath) {
    WsUrl url;
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url("ws://telemetry.example.com", &url));
    CHECK_FALSE(url.tls);
    STRCMP_EQUAL("telemetry.example.com", url.host);
    UNSIGNED_LONGS_EQUAL(80, url.port);
    STRCMP_EQUAL("/", url.path);
}

TEST(WsUrl, SecureUrlWithPortPathAndQuery) {
    WsUrl url;
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url("WSS://Gw.Example:8443/v1/stream?device=42", &url));
    CHECK_TRUE(url.tls);
    STRCMP_EQUAL("Gw.Example", url.host);
    UNSIGNED_LONGS_EQUAL(8443, url.port);
    STRCMP_EQUAL("/v1/stream?device=42", url.path);
}

TEST(WsUrl, DefaultPortForWssIs443AndQueryWithoutPathGetsASlash) {
    WsUrl url;
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url("wss://h?x=1", &url));
    UNSIGNED_LONGS_EQUAL(443, url.port);
    STRCMP_EQUAL("/?x=1", url.path);
}

TEST(WsUrl, BracketedIpv6Literal) {
    WsUrl url;
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url("ws://[::1]:9000/echo", &url));
    STRCMP_EQUAL("::1", url.host);
    CHECK_TRUE(url.host_is_ipv6);
    UNSIGNED_LONGS_EQUAL(9000, url.port);
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url("ws://[fe80::2]", &url));
    UNSIGNED_LONGS_EQUAL(80, url.port);
}

TEST(WsUrl, RejectsWhatItDoesNotUnderstand) {
    WsUrl url;
    CHECK_EQUAL(UrlStatus::kBadScheme, parse_ws_url("http://h/", &url));
    CHECK_EQUAL(UrlStatus::kBadScheme, parse_ws_url("ws:/h/", &url));
    CHECK_EQUAL(UrlStatus::kBadHost, parse_ws_url("ws:///path", &url));
    CHECK_EQUAL(UrlStatus::kBadHost, parse_ws_url("ws://[::1/x", &url));
    CHECK_EQUAL(UrlStatus::kBadHost, parse_ws_url("ws://[::1]x/", &url));
    CHECK_EQUAL(UrlStatus::kBadHost, parse_ws_url("ws://ho st/", &url));
    CHECK_EQUAL(UrlStatus::kBadPort, parse_ws_url("ws://h:1:2/", &url));
    CHECK_EQUAL(UrlStatus::kBadPort, parse_ws_url("ws://h:0/", &url));
    CHECK_EQUAL(UrlStatus::kBadPort, parse_ws_url("ws://h:65536/", &url));
    CHECK_EQUAL(UrlStatus::kBadPort, parse_ws_url("ws://h:/", &url));
    CHECK_EQUAL(UrlStatus::kBadPort, parse_ws_url("ws://h:8x/", &url));
    CHECK_EQUAL(UrlStatus::kHasUserinfo, parse_ws_url("wss://user:secret@h/", &url));
    CHECK_EQUAL(UrlStatus::kHasFragment, parse_ws_url("ws://h/a#b", &url));
    CHECK_EQUAL(UrlStatus::kBadPath, parse_ws_url("ws://h/a b", &url));
    CHECK_EQUAL(UrlStatus::kBadPath, parse_ws_url("ws://h/\xc3\xa9", &url));
}

TEST(WsUrl, RejectsOverlongHostAndPath) {
    WsUrl url;
    const std::string long_host = "ws://" + std::string(254, 'a') + "/";
    CHECK_EQUAL(UrlStatus::kBadHost, parse_ws_url(long_host.c_str(), &url));
    const std::string max_host = "ws://" + std::string(253, 'a') + "/";
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url(max_host.c_str(), &url));
    const std::string long_path = "ws://h/" + std::string(1024, 'p');
    CHECK_EQUAL(UrlStatus::kBadPath, parse_ws_url(long_path.c_str(), &url));
    const std::string max_path = "ws://h/" + std::string(1023, 'p');
    CHECK_EQUAL(UrlStatus::kOk, parse_ws_url(max_path.c_str(), &url));
}

TEST(WsUrl, StatusNames) {
    STRCMP_EQUAL("has_userinfo", tether::net::to_string(UrlStatus::kHasUserinfo));
    STRCMP_EQUAL("unknown", tether::net::to_string(static_cast<UrlStatus>(77)));
}

// SPDX-License-Identifier: MIT
// tetherd's "proxy" section: parsing, the password file, what reaches the
// link, and that the password never reaches a log line or an error.
#include <string>

#include "config.h"
#include "support/temp_dir.h"

// After the standard headers: CppUTest's operator-new macro breaks them.
#include <CppUTest/TestHarness.h>

using tether::daemon::DaemonConfig;

namespace {

std::string with_proxy(const std::string& proxy) {
    return R"({"endpoints": ["wss://gw.lan:8443/", "ws://direct.internal/"], "proxy": )" + proxy +
           "}";
}

bool parse(const std::string& json, DaemonConfig* config, std::string* error) {
    return tether::daemon::parse_config(json.data(), json.size(), config, error);
}

std::string parse_error(const std::string& proxy) {
    DaemonConfig config;
    std::string error;
    CHECK_FALSE(parse(with_proxy(proxy), &config, &error));
    return error;
}

}  // namespace

TEST_GROUP(TetherdProxyConfig){};

TEST(TetherdProxyConfig, AbsentMeansDirect) {
    DaemonConfig config;
    std::string error;
    CHECK_TRUE(parse(R"({"endpoints": ["ws://localhost/"]})", &config, &error));
    tether::port::PosixLinkSettings settings;
    tether::daemon::to_link_settings(config, &settings);
    CHECK(settings.link.client.proxy == nullptr);
    CHECK(tether::daemon::describe(config).find("proxy") == std::string::npos);
}

TEST(TetherdProxyConfig, FieldsReachTheLink) {
    tether::test::TempDir dir;
    const std::string password = dir.write_file("proxy-password", "pa:ss w0rd\n");
    DaemonConfig config;
    std::string error;
    CHECK_TRUE(parse(
        with_proxy(R"({"url": "http://proxy.lan:3128", "username": "gw7",)"
                   R"( "password_file": ")" +
                   password + R"(", "no_proxy": [".internal", "10.0.0.1"], "timeout_ms": 2500})"),
        &config, &error));
    CHECK_TRUE(
        tether::daemon::resolve_paths(&config, tether::daemon::ServiceEnvironment{}, true, &error));
    tether::port::PosixLinkSettings settings;
    tether::daemon::to_link_settings(config, &settings);
    const tether::net::ProxyUrl* proxy = settings.link.client.proxy;
    CHECK(proxy != nullptr);
    STRCMP_EQUAL("proxy.lan", proxy->host);
    UNSIGNED_LONGS_EQUAL(3128, proxy->port);
    CHECK_TRUE(proxy->has_credentials);
    STRCMP_EQUAL("gw7", proxy->username);
    STRCMP_EQUAL("pa:ss w0rd", proxy->password);
    STRCMP_EQUAL(".internal,10.0.0.1", settings.link.client.no_proxy);
    UNSIGNED_LONGS_EQUAL(2500, settings.link.client.reconnect.proxy_timeout_ms);
    const std::string line = tether::daemon::describe(config);
    STRCMP_CONTAINS(
        ("proxy=proxy.lan:3128,user:gw7,password_file:" + password + ",no_proxy:.internal,10.0.0.1")
            .c_str(),
        line.c_str());
    CHECK(line.find("w0rd") == std::string::npos);
}

TEST(TetherdProxyConfig, PasswordFileAsASystemdCredential) {
    tether::test::TempDir dir;
    dir.write_file("proxy", "secret\r\n");
    DaemonConfig config;
    std::string error;
    CHECK_TRUE(parse(with_proxy(R"({"url": "http://[::1]:3128", "username": "u",)"
                                R"( "password_file": "credential:proxy"})"),
                     &config, &error));
    tether::daemon::ServiceEnvironment env;
    env.credentials_directory = dir.path();
    CHECK_TRUE(tether::daemon::resolve_paths(&config, env, true, &error));
    STRCMP_EQUAL("secret", config.proxy.parsed.password);
    STRCMP_CONTAINS("proxy=[::1]:3128", tether::daemon::describe(config).c_str());
}

TEST(TetherdProxyConfig, CheckConfigDoesNotReadThePassword) {
    DaemonConfig config;
    std::string error;
    CHECK_TRUE(parse(with_proxy(R"({"url": "http://p:1", "username": "u",)"
                                R"( "password_file": "/nonexistent/pw"})"),
                     &config, &error));
    CHECK_TRUE(tether::daemon::resolve_paths(&config, tether::daemon::ServiceEnvironment{}, false,
                                             &error));
    CHECK_FALSE(
        tether::daemon::resolve_paths(&config, tether::daemon::ServiceEnvironment{}, true, &error));
    STRCMP_CONTAINS("proxy.password_file: /nonexistent/pw: cannot read", error.c_str());
}

TEST(TetherdProxyConfig, ABadPasswordFileIsNamedButNotQuoted) {
    tether::test::TempDir dir;
    const std::string empty = dir.write_file("empty", "\n");
    const std::string control = dir.write_file("control", "sec\x01ret\n");
    for (const std::string& path : {empty, control}) {
        DaemonConfig config;
        std::string error;
        CHECK_TRUE(parse(with_proxy(R"({"url": "http://p:1", "username": "u", "password_file": ")" +
                                    path + "\"}"),
                         &config, &error));
        CHECK_FALSE(tether::daemon::resolve_paths(&config, tether::daemon::ServiceEnvironment{},
                                                  true, &error));
        STRCMP_CONTAINS("expected one line of 1..256 printable characters", error.c_str());
        CHECK(error.find("sec") == std::string::npos);
    }
}

TEST(TetherdProxyConfig, ErrorsNameTheFieldAndNeverEchoTheUrl) {
    STRCMP_EQUAL(
        "proxy.url: credentials in the URL are not allowed (use proxy.username and "
        "proxy.password_file)",
        parse_error(R"({"url": "http://u:SECRET@p:1"})").c_str());
    STRCMP_EQUAL("proxy.url: expected http://host:port (bad_scheme)",
                 parse_error(R"({"url": "https://SECRET@p:1"})").c_str());
    STRCMP_EQUAL("proxy.url: expected http://host:port (bad_port)",
                 parse_error(R"({"url": "http://p:99999"})").c_str());
    STRCMP_EQUAL("proxy.url: required with the other proxy fields",
                 parse_error(R"({"username": "u"})").c_str());
    STRCMP_EQUAL("proxy.password_file: requires proxy.username",
                 parse_error(R"({"url": "http://p:1", "password_file": "/pw"})").c_str());
    STRCMP_EQUAL("proxy.username: expected at most 128 characters without ':'",
                 parse_error(R"({"url": "http://p:1", "username": "a:b"})").c_str());
    STRCMP_EQUAL("proxy.no_proxy[1]: expected a string, got a number",
                 parse_error(R"({"url": "http://p:1", "no_proxy": ["a", 1]})").c_str());
    STRCMP_EQUAL("proxy.no_proxy[0]: expected one entry, without ','",
                 parse_error(R"({"url": "http://p:1", "no_proxy": ["a,b"]})").c_str());
    STRCMP_EQUAL("proxy.colour: unknown field", parse_error(R"({"colour": 1})").c_str());
    STRCMP_EQUAL("proxy.timeout_ms: expected 1..86400000, got 0",
                 parse_error(R"({"url": "http://p:1", "timeout_ms": 0})").c_str());
}

TEST(TetherdProxyConfig, NoProxyEntriesReachTheClientsMatcher) {
    DaemonConfig config;
    std::string error;
    CHECK_TRUE(parse(with_proxy(R"({"url": "http://p:1", "no_proxy": ["direct.internal"]})"),
                     &config, &error));
    tether::port::PosixLinkSettings settings;
    tether::daemon::to_link_settings(config, &settings);
    CHECK_TRUE(tether::net::no_proxy_matches(settings.link.client.no_proxy, "direct.internal", 80));
    CHECK_FALSE(tether::net::no_proxy_matches(settings.link.client.no_proxy, "gw.lan", 8443));
}

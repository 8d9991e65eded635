// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>

#include "support/tether_strings.h"
#include "tether/net/http_proxy.h"

using tether::net::build_connect_request;
using tether::net::ConnectBuildStatus;
using tether::net::ConnectRequest;
using tether::net::ConnectResponseParser;
using tether::net::ConnectResult;
using tether::net::no_proxy_matches;
using tether::net::parse_proxy_url;
using tether::net::ProxyUrl;
using tether::net::ProxyUrlStatus;

namespace {

std::string build(const ConnectRequest& request, ConnectBuildStatus expected) {
    char out[tether::net::kMaxConnectRequest];
    std::size_t length = 99;
    const ConnectBuildStatus status = build_connect_request(request, out, sizeof out, &length);
    CHECK_EQUAL(expected, status);
    if (status != ConnectBuildStatus::kOk) {
        LONGS_EQUAL(0, static_cast<long>(length));
        return "";
    }
    return std::string(out, length);
}

// Feeds `text` in chunks of `chunk` bytes (never more than bytes_wanted()
// when `respect_wanted`); returns the result and where the block ended.
ConnectResult feed_chunked(ConnectResponseParser& parser, const std::string& text,
                           std::size_t chunk, std::size_t* end, bool respect_wanted = false) {
    std::size_t offset = 0;
    ConnectResult result = ConnectResult::kNeedMore;
    while (offset < text.size() && result == ConnectResult::kNeedMore) {
        std::size_t size = chunk < text.size() - offset ? chunk : text.size() - offset;
        if (respect_wanted && size > parser.bytes_wanted()) {
            size = parser.bytes_wanted();
        }
        std::size_t consumed = 0;
        result = parser.feed(reinterpret_cast<const std::uint8_t*>(text.data()) + offset, size,
                             &consumed);
        CHECK(consumed <= size);
        if (result == ConnectResult::kNeedMore) {
            LONGS_EQUAL(static_cast<long>(size), static_cast<long>(consumed));
        }
        offset += consumed;
    }
    *end = offset;
    return result;
}

}  // namespace

TEST_GROUP(ProxyUrl){};

TEST(ProxyUrl, HostAndPortWithTheDefaultPort) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kOk, parse_proxy_url("http://proxy.example:3128", &url));
    STRCMP_EQUAL("proxy.example", url.host);
    UNSIGNED_LONGS_EQUAL(3128, url.port);
    CHECK_FALSE(url.has_credentials);
    CHECK_EQUAL(ProxyUrlStatus::kOk, parse_proxy_url("HTTP://proxy/", &url));
    UNSIGNED_LONGS_EQUAL(80, url.port);
}

TEST(ProxyUrl, WithoutSchemeAsTheEnvironmentOftenHasIt) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kOk, parse_proxy_url("10.0.0.1:8080", &url));
    STRCMP_EQUAL("10.0.0.1", url.host);
    UNSIGNED_LONGS_EQUAL(8080, url.port);
}

TEST(ProxyUrl, Ipv6LiteralInBrackets) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kOk, parse_proxy_url("http://[::1]:3128", &url));
    STRCMP_EQUAL("::1", url.host);
    CHECK_TRUE(url.host_is_ipv6);
}

TEST(ProxyUrl, CredentialsArePercentDecoded) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kOk,
                parse_proxy_url("http://us%65r:p%40ss%3Aw@rd@proxy:3128", &url));
    CHECK_TRUE(url.has_credentials);
    STRCMP_EQUAL("user", url.username);
    STRCMP_EQUAL("p@ss:w@rd", url.password);
    STRCMP_EQUAL("proxy", url.host);
}

TEST(ProxyUrl, UserWithoutPassword) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kOk, parse_proxy_url("http://user@proxy:1", &url));
    CHECK_TRUE(url.has_credentials);
    STRCMP_EQUAL("user", url.username);
    STRCMP_EQUAL("", url.password);
}

TEST(ProxyUrl, RejectsWhatItCannotUse) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kBadScheme, parse_proxy_url("https://proxy:443", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadScheme, parse_proxy_url("socks5://proxy:1080", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadHost, parse_proxy_url("http://", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadHost, parse_proxy_url("http://pro xy:1", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadPort, parse_proxy_url("http://proxy:0", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadPort, parse_proxy_url("http://proxy:65536", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadPath, parse_proxy_url("http://proxy:1/path", &url));
}

TEST(ProxyUrl, RejectsControlCharactersInCredentialsAndLeavesNoneBehind) {
    ProxyUrl url;
    CHECK_EQUAL(ProxyUrlStatus::kBadCredentials,
                parse_proxy_url("http://user:secret%0D%0AX-Evil:1@proxy:1", &url));
    STRCMP_EQUAL("", url.password);
    CHECK_FALSE(url.has_credentials);
    CHECK_EQUAL(ProxyUrlStatus::kBadCredentials, parse_proxy_url("http://us%3Aer:pw@proxy", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadCredentials, parse_proxy_url("http://user:bad%zz@proxy", &url));
    CHECK_EQUAL(ProxyUrlStatus::kBadCredentials, parse_proxy_url("http://user:bad%4@proxy", &url));
}

TEST_GROUP(NoProxy){};

TEST(NoProxy, NullOrEmptyMatchesNothing) {
    CHECK_FALSE(no_proxy_matches(nullptr, "example.com", 443));
    CHECK_FALSE(no_proxy_matches("", "example.com", 443));
    CHECK_FALSE(no_proxy_matches(" , ,", "example.com", 443));
}

TEST(NoProxy, StarMatchesEverything) {
    CHECK_TRUE(no_proxy_matches("*", "anything.example", 1));
    CHECK_TRUE(no_proxy_matches("foo, *", "127.0.0.1", 1));
}

TEST(NoProxy, DomainMatchesItselfAndNamesBelowWithOrWithoutLeadingDot) {
    CHECK_TRUE(no_proxy_matches("example.com", "example.com", 443));
    CHECK_TRUE(no_proxy_matches("example.com", "a.b.Example.COM", 443));
    CHECK_TRUE(no_proxy_matches(".example.com", "example.com", 443));
    CHECK_TRUE(no_proxy_matches(".example.com", "gw.example.com", 443));
    CHECK_TRUE(no_proxy_matches("example.com.", "gw.example.com.", 443));
    CHECK_FALSE(no_proxy_matches("example.com", "notexample.com", 443));
    CHECK_FALSE(no_proxy_matches("gw.example.com", "example.com", 443));
}

TEST(NoProxy, ListSeparatedByCommasAndSpaces) {
    CHECK_TRUE(no_proxy_matches("localhost, internal.lan,example.org", "example.org", 80));
    CHECK_TRUE(no_proxy_matches("localhost internal.lan", "x.internal.lan", 80));
    CHECK_FALSE(no_proxy_matches("localhost,internal.lan", "example.org", 80));
}

TEST(NoProxy, AddressLiteralsMatchWhole) {
    CHECK_TRUE(no_proxy_matches("127.0.0.1", "127.0.0.1", 80));
    CHECK_FALSE(no_proxy_matches("0.0.1", "127.0.0.1", 80));
    CHECK_TRUE(no_proxy_matches("::1", "::1", 80));
    CHECK_TRUE(no_proxy_matches("[::1]", "::1", 80));
    CHECK_FALSE(no_proxy_matches("::2", "::1", 80));
}

TEST(NoProxy, PortLimitsTheEntry) {
    CHECK_TRUE(no_proxy_matches("example.com:8443", "gw.example.com", 8443));
    CHECK_FALSE(no_proxy_matches("example.com:8443", "gw.example.com", 443));
    CHECK_TRUE(no_proxy_matches("[::1]:9000", "::1", 9000));
    CHECK_FALSE(no_proxy_matches("[::1]:9000", "::1", 9001));
    CHECK_FALSE(no_proxy_matches("example.com:", "example.com", 443));
    CHECK_FALSE(no_proxy_matches("example.com:99999", "example.com", 443));
}

TEST_GROUP(ConnectRequest){};

TEST(ConnectRequest, WithoutCredentials) {
    STRCMP_EQUAL("CONNECT gw.example:443 HTTP/1.1\r\nHost: gw.example:443\r\n\r\n",
                 build(ConnectRequest{"gw.example", 443}, ConnectBuildStatus::kOk).c_str());
}

TEST(ConnectRequest, Ipv6OriginInBrackets) {
    STRCMP_EQUAL("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n",
                 build(ConnectRequest{"2001:db8::1", 8443}, ConnectBuildStatus::kOk).c_str());
}

TEST(ConnectRequest, BasicCredentialsAsRfc7617Example) {
    // RFC 7617 section 2: Aladdin / open sesame.
    STRCMP_EQUAL(
        "CONNECT o:1 HTTP/1.1\r\nHost: o:1\r\n"
        "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n",
        build(ConnectRequest{"o", 1, "Aladdin", "open sesame"}, ConnectBuildStatus::kOk).c_str());
}

TEST(ConnectRequest, Base64PaddingOfEveryLength) {
    // "u:" (2 bytes), "u:p" (3), "u:pw" (4)
    CHECK(
        build(ConnectRequest{"o", 1, "u", nullptr}, ConnectBuildStatus::kOk).find("Basic dTo=\r") !=
        std::string::npos);
    CHECK(build(ConnectRequest{"o", 1, "u", "p"}, ConnectBuildStatus::kOk).find("Basic dTpw\r") !=
          std::string::npos);
    CHECK(build(ConnectRequest{"o", 1, "u", "pw"}, ConnectBuildStatus::kOk)
              .find("Basic dTpwdw==\r") != std::string::npos);
}

TEST(ConnectRequest, RefusesHeaderInjectionInEveryField) {
    build(ConnectRequest{"gw.example\r\nX-Evil: 1", 443}, ConnectBuildStatus::kBadHost);
    build(ConnectRequest{"gw example", 443}, ConnectBuildStatus::kBadHost);
    build(ConnectRequest{"", 443}, ConnectBuildStatus::kBadHost);
    build(ConnectRequest{nullptr, 443}, ConnectBuildStatus::kBadHost);
    build(ConnectRequest{"gw", 0}, ConnectBuildStatus::kBadHost);
    build(ConnectRequest{"gw", 1, "us\ner", "pw"}, ConnectBuildStatus::kBadCredentials);
    build(ConnectRequest{"gw", 1, "user", "p\rw"}, ConnectBuildStatus::kBadCredentials);
    build(ConnectRequest{"gw", 1, "user", "p\x7fw"}, ConnectBuildStatus::kBadCredentials);
    build(ConnectRequest{"gw", 1, "us:er", "pw"}, ConnectBuildStatus::kBadCredentials);
    build(ConnectRequest{"gw", 1, nullptr, "pw"}, ConnectBuildStatus::kBadCredentials);
}

TEST(ConnectRequest, TooSmallABufferIsClearedNotTruncated) {
    char out[40];
    std::memset(out, 'x', sizeof out);
    std::size_t length = 5;
    CHECK_EQUAL(ConnectBuildStatus::kNoSpace,
                build_connect_request(ConnectRequest{"gw.example", 443, "user", "secret"}, out,
                                      sizeof out, &length));
    LONGS_EQUAL(0, static_cast<long>(length));
    for (char c : out) {
        LONGS_EQUAL(0, c);
    }
}

TEST(ConnectRequest, LongestInputsFitTheDocumentedMaximum) {
    const std::string host(tether::net::kMaxHostLength, 'h');
    const std::string user(tether::net::kMaxProxyUsername, 'u');
    const std::string password(tether::net::kMaxProxyPassword, 'p');
    build(ConnectRequest{host.c_str(), 65535, user.c_str(), password.c_str()},
          ConnectBuildStatus::kOk);
    const std::string longer(tether::net::kMaxProxyPassword + 1, 'p');
    build(ConnectRequest{host.c_str(), 65535, user.c_str(), longer.c_str()},
          ConnectBuildStatus::kBadCredentials);
}

TEST_GROUP(ConnectResponse){};

TEST(ConnectResponse, EstablishedInEveryChunkSizeKeepsTheOriginsBytes) {
    const std::string block =
        "HTTP/1.1 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n";
    const std::string text = block + "ORIGIN";
    for (std::size_t chunk = 1; chunk <= text.size(); ++chunk) {
        ConnectResponseParser parser;
        std::size_t end = 0;
        CHECK_EQUAL(ConnectResult::kEstablished, feed_chunked(parser, text, chunk, &end));
        LONGS_EQUAL(static_cast<long>(block.size()), static_cast<long>(end));
        UNSIGNED_LONGS_EQUAL(200, parser.status_code());
    }
}

TEST(ConnectResponse, ReadingBytesWantedNeverPassesTheBlock) {
    const std::string block = "HTTP/1.0 200 OK\r\nA: b\r\n\r\n";
    ConnectResponseParser parser;
    std::size_t end = 0;
    CHECK_EQUAL(ConnectResult::kEstablished, feed_chunked(parser, block + "xyz", 64, &end, true));
    LONGS_EQUAL(static_cast<long>(block.size()), static_cast<long>(end));
    LONGS_EQUAL(0, static_cast<long>(parser.bytes_wanted()));
}

TEST(ConnectResponse, BytesWantedFollowsTheTerminator) {
    ConnectResponseParser parser;
    LONGS_EQUAL(4, static_cast<long>(parser.bytes_wanted()));
    std::size_t consumed = 0;
    const std::uint8_t status[] = "HTTP/1.1 200 OK\r";
    CHECK_EQUAL(ConnectResult::kNeedMore, parser.feed(status, sizeof status - 1, &consumed));
    LONGS_EQUAL(3, static_cast<long>(parser.bytes_wanted()));
    const std::uint8_t lf[] = "\n";
    CHECK_EQUAL(ConnectResult::kNeedMore, parser.feed(lf, 1, &consumed));
    LONGS_EQUAL(2, static_cast<long>(parser.bytes_wanted()));
    const std::uint8_t cr[] = "\r";
    CHECK_EQUAL(ConnectResult::kNeedMore, parser.feed(cr, 1, &consumed));
    LONGS_EQUAL(1, static_cast<long>(parser.bytes_wanted()));
    CHECK_EQUAL(ConnectResult::kEstablished, parser.feed(lf, 1, &consumed));
}

TEST(ConnectResponse, EachRefusalHasItsOwnResult) {
    struct Case {
        const char* text;
        ConnectResult result;
        unsigned code;
    };
    const Case cases[] = {
        {"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
         "realm=\"tinyproxy\"\r\nContent-Length: 3\r\n\r\nabc",
         ConnectResult::kAuthRequired, 407},
        {"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\n\r\n",
         ConnectResult::kAuthRequired, 401},
        {"HTTP/1.0 403 Access violation\r\n\r\n", ConnectResult::kForbidden, 403},
        {"HTTP/1.0 502 Bad Gateway\r\n\r\n", ConnectResult::kBadGateway, 502},
        {"HTTP/1.1 503 Service Unavailable\r\n\r\n", ConnectResult::kUnavailable, 503},
        {"HTTP/1.1 504 Gateway Timeout\r\n\r\n", ConnectResult::kGatewayTimeout, 504},
        {"HTTP/1.1 500 Unable to connect\r\n\r\n", ConnectResult::kRejected, 500},
        {"HTTP/1.1 400 Bad Request\r\n\r\n", ConnectResult::kRejected, 400},
        {"HTTP/1.1 301 Moved\r\nLocation: x\r\n\r\n", ConnectResult::kRejected, 301},
        {"HTTP/1.1 204\r\n\r\n", ConnectResult::kEstablished, 204},
    };
    for (const Case& c : cases) {
        for (std::size_t chunk : {1u, 2u, 3u, 7u, 4096u}) {
            ConnectResponseParser parser;
            std::size_t end = 0;
            CHECK_EQUAL_TEXT(c.result, feed_chunked(parser, c.text, chunk, &end), c.text);
            UNSIGNED_LONGS_EQUAL(c.code, parser.status_code());
        }
    }
}

TEST(ConnectResponse, ProxyAuthenticateIsNoticed) {
    ConnectResponseParser parser;
    std::size_t end = 0;
    CHECK_EQUAL(ConnectResult::kAuthRequired,
                feed_chunked(parser,
                             "HTTP/1.1 407 x\r\nproxy-authenticate: Negotiate, BASIC "
                             "realm=\"r\"\r\n\r\n",
                             5, &end));
    CHECK_TRUE(parser.has_proxy_authenticate());
    CHECK_TRUE(parser.offers_basic());

    ConnectResponseParser other;
    CHECK_EQUAL(
        ConnectResult::kAuthRequired,
        feed_chunked(other, "HTTP/1.1 407 x\r\nProxy-Authenticate: Basicish\r\n\r\n", 5, &end));
    CHECK_TRUE(other.has_proxy_authenticate());
    CHECK_FALSE(other.offers_basic());
}

TEST(ConnectResponse, MalformedResponses) {
    const char* const cases[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 200 OK\n\n",
        "HTTP/1.1 200 OK\r\nA: b\n\r\n",
        "HTTP/1.1 200 OK\rX\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",
    };
    for (const char* text : cases) {
        ConnectResponseParser parser;
        std::size_t end = 0;
        CHECK_EQUAL_TEXT(ConnectResult::kMalformed, feed_chunked(parser, text, 3, &end), text);
    }
}

TEST(ConnectResponse, HeaderBlockIsBounded) {
    std::string text = "HTTP/1.1 200 OK\r\n";
    while (text.size() < tether::net::kMaxConnectResponse) {
        text += "X-Padding: " + std::string(1000, 'a') + "\r\n";
    }
    text += "\r\n";
    ConnectResponseParser parser;
    std::size_t end = 0;
    CHECK_EQUAL(ConnectResult::kTooLarge, feed_chunked(parser, text, 333, &end));
}

TEST(ConnectResponse, LongFieldLinesAreSkippedWithinTheBound) {
    const std::string text = "HTTP/1.1 200 OK\r\nX-Long: " + std::string(1000, 'a') + "\r\n\r\n";
    ConnectResponseParser parser;
    std::size_t end = 0;
    CHECK_EQUAL(ConnectResult::kEstablished, feed_chunked(parser, text, 17, &end));
    LONGS_EQUAL(static_cast<long>(text.size()), static_cast<long>(end));
}

TEST(ConnectResponse, FinalResultIsStickyAndResetStartsAgain) {
    ConnectResponseParser parser;
    std::size_t end = 0;
    CHECK_EQUAL(ConnectResult::kForbidden,
                feed_chunked(parser, "HTTP/1.1 403 no\r\n\r\n", 4, &end));
    std::size_t consumed = 7;
    const std::uint8_t more[] = "HTTP/1.1 200 OK\r\n\r\n";
    CHECK_EQUAL(ConnectResult::kForbidden, parser.feed(more, sizeof more - 1, &consumed));
    LONGS_EQUAL(0, static_cast<long>(consumed));
    parser.reset();
    CHECK_EQUAL(ConnectResult::kEstablished, parser.feed(more, sizeof more - 1, &consumed));
}

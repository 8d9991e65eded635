#include <poll.h>

#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>

#include "support/temp_dir.h"
#include "support/tether_strings.h"
#include "tether/port/credentials.h"

using tether::port::TokenCommandCredentials;
using tether::port::TokenFileCredentials;

namespace {

// Drives a background refresh to its end the way the loop would.
void drain(TokenCommandCredentials& command) {
    for (int i = 0; i < 500 && command.fd() >= 0; ++i) {
        struct pollfd pfd {
            command.fd(), POLLIN, 0
        };
        ::poll(&pfd, 1, 20);
        command.on_readable();
    }
}

}  // namespace

TEST_GROUP(Credentials){};

TEST(Credentials, TokenFileGivesItsFirstLineAsABearerToken) {
    tether::test::TempDir dir;
    const std::string path = dir.write_file("token", "s3cr3t\nsecond line\n");
    TokenFileCredentials credentials(path.c_str());
    char header[64];
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    STRCMP_EQUAL("Bearer s3cr3t", header);
    dir.write_file("token", "rotated\r\n");
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    STRCMP_EQUAL("Bearer rotated", header);
}

TEST(Credentials, TokenFileMissingEmptyOrTooLongGivesNothing) {
    tether::test::TempDir dir;
    char header[16];
    const std::string absent = dir.path() + "/absent";  // the path must outlive the credentials
    TokenFileCredentials missing(absent.c_str());
    CHECK_FALSE(missing.authorization(header, sizeof header));
    const std::string empty = dir.write_file("empty", "\n");
    TokenFileCredentials blank(empty.c_str());
    CHECK_FALSE(blank.authorization(header, sizeof header));
    const std::string long_token = dir.write_file("long", "0123456789abcdef\n");
    TokenFileCredentials too_long(long_token.c_str());
    CHECK_FALSE(too_long.authorization(header, sizeof header));
}

TEST(Credentials, TokenCommandFetchesAtStartAndRefreshesInTheBackground) {
    tether::test::TempDir dir;
    const std::string source = dir.write_file("source", "first\n");
    const std::string command = "cat " + source;
    TokenCommandCredentials credentials(command.c_str());
    CHECK_EQUAL(tether::Status::kOk, credentials.fetch_now(5000));
    char header[64];
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    STRCMP_EQUAL("Bearer first", header);

    dir.write_file("source", "second\n");
    credentials.refresh();
    CHECK(credentials.fd() >= 0);
    // Until the command is done, the previous token stands.
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    drain(credentials);
    CHECK_EQUAL(-1, credentials.fd());
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    STRCMP_EQUAL("Bearer second", header);
}

TEST(Credentials, AFailingCommandKeepsThePreviousToken) {
    TokenCommandCredentials failing("echo partial; exit 3");
    CHECK_EQUAL(tether::Status::kUnavailable, failing.fetch_now(5000));
    CHECK_FALSE(failing.has_token());
    UNSIGNED_LONGS_EQUAL(1, failing.failures());
}

TEST(Credentials, ASlowCommandTimesOutAtStart) {
    TokenCommandCredentials slow("sleep 5; echo late");
    CHECK_EQUAL(tether::Status::kUnavailable, slow.fetch_now(100));
    CHECK_EQUAL(-1, slow.fd());
}

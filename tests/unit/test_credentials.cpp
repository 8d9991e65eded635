// SPDX-License-Identifier: MIT
#include <poll.h>

#include <cstring>
#include <string>

#include <CppUTest/TestHarness.h>

#include "support/temp_dir.h"
#include "support/tether_strings.h"
#include "tether/port/credentials.h"

using tether::port::TokenCommandCredentials;
using tether::port::TokenFileCredentials;
using tether::port::TokenFileProblem;

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

TEST(Credentials, TokenFileSaysWhyItHasNoToken) {
    tether::test::TempDir dir;
    char header[2048];
    const std::string absent = dir.path() + "/absent";
    TokenFileCredentials missing(absent.c_str());
    CHECK_FALSE(missing.authorization(header, sizeof header));
    CHECK(missing.problem_kind() == TokenFileProblem::kMissing);
    STRCMP_EQUAL("missing (No such file or directory)", missing.problem());
    const std::string below_a_file = dir.write_file("file", "x\n") + "/token";
    TokenFileCredentials not_a_directory(below_a_file.c_str());
    CHECK_FALSE(not_a_directory.authorization(header, sizeof header));
    CHECK(not_a_directory.problem_kind() == TokenFileProblem::kMissing);

    TokenFileCredentials directory(dir.path().c_str());
    CHECK_FALSE(directory.authorization(header, sizeof header));
    CHECK(directory.problem_kind() == TokenFileProblem::kUnreadable);
    STRCMP_EQUAL("unreadable (Is a directory)", directory.problem());

    const std::string blank = dir.write_file("blank", "\nsecond line\n");
    TokenFileCredentials empty(blank.c_str());
    CHECK_FALSE(empty.authorization(header, sizeof header));
    CHECK(empty.problem_kind() == TokenFileProblem::kEmpty);
    STRCMP_EQUAL("empty (no token on the first line)", empty.problem());
}

TEST(Credentials, TokenFileRefusesALongTokenInsteadOfCuttingIt) {
    tether::test::TempDir dir;
    char header[2048];
    const std::string longest = dir.write_file("longest", std::string(1024, 'a') + "\n");
    TokenFileCredentials fits(longest.c_str());
    CHECK_TRUE(fits.authorization(header, sizeof header));
    UNSIGNED_LONGS_EQUAL(7 + 1024, std::strlen(header));
    STRCMP_EQUAL("", fits.problem());

    const std::string longer = dir.write_file("longer", std::string(1025, 'a') + "\n");
    TokenFileCredentials too_long(longer.c_str());
    CHECK_FALSE(too_long.authorization(header, sizeof header));
    CHECK(too_long.problem_kind() == TokenFileProblem::kTooLong);
    STRCMP_EQUAL("too long (the first line exceeds 1024 bytes)", too_long.problem());

    // The caller's buffer is a limit too: "Bearer " + 9 bytes + NUL > 16.
    const std::string nine = dir.write_file("nine", "123456789\n");
    TokenFileCredentials small(nine.c_str());
    CHECK_FALSE(small.authorization(header, 16));
    CHECK(small.problem_kind() == TokenFileProblem::kTooLong);
    STRCMP_EQUAL("too long (the first line exceeds 8 bytes)", small.problem());
}

TEST(Credentials, TokenFileProblemsChangeTheGenerationOncePerDistinctProblem) {
    tether::test::TempDir dir;
    char header[64];
    const std::string path = dir.file("token");
    TokenFileCredentials credentials(path.c_str());
    UNSIGNED_LONGS_EQUAL(0, credentials.problem_generation());
    STRCMP_EQUAL("", credentials.problem());
    for (int i = 0; i < 3; ++i) {
        CHECK_FALSE(credentials.authorization(header, sizeof header));
    }
    UNSIGNED_LONGS_EQUAL(1, credentials.problem_generation());  // logged once
    UNSIGNED_LONGS_EQUAL(3, credentials.failures());            // counted each time

    dir.write_file("token", "s3cr3t\n");
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    CHECK_TRUE(credentials.authorization(header, sizeof header));
    UNSIGNED_LONGS_EQUAL(2, credentials.problem_generation());  // solved: once more
    CHECK(credentials.problem_kind() == TokenFileProblem::kNone);
    STRCMP_EQUAL("", credentials.problem());
    UNSIGNED_LONGS_EQUAL(3, credentials.failures());

    dir.write_file("token", "\n");
    CHECK_FALSE(credentials.authorization(header, sizeof header));
    CHECK_FALSE(credentials.authorization(header, sizeof header));
    UNSIGNED_LONGS_EQUAL(3, credentials.problem_generation());
    STRCMP_EQUAL("empty (no token on the first line)", credentials.problem());
    UNSIGNED_LONGS_EQUAL(5, credentials.failures());
    // A new kind of problem, and its text holds none of the file's bytes.
    dir.write_file("token", std::string(2000, 's') + "\n");
    CHECK_FALSE(credentials.authorization(header, sizeof header));
    UNSIGNED_LONGS_EQUAL(4, credentials.problem_generation());
    STRCMP_EQUAL("too long (the first line exceeds 56 bytes)", credentials.problem());
}

TEST(Credentials, TokenFileProblemNames) {
    STRCMP_EQUAL("none", tether::port::to_string(TokenFileProblem::kNone));
    STRCMP_EQUAL("missing", tether::port::to_string(TokenFileProblem::kMissing));
    STRCMP_EQUAL("unreadable", tether::port::to_string(TokenFileProblem::kUnreadable));
    STRCMP_EQUAL("empty", tether::port::to_string(TokenFileProblem::kEmpty));
    STRCMP_EQUAL("too_long", tether::port::to_string(TokenFileProblem::kTooLong));
    STRCMP_EQUAL("unknown", tether::port::to_string(static_cast<TokenFileProblem>(9)));
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

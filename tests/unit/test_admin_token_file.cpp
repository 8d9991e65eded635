// SPDX-License-Identifier: MIT
// tether-server's admin token file: created 0600 from the random source, read
// back, and refused when it is not safely the server's own.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "admin_token_file.h"
#include "fakes/counting_random.h"
#include "support/temp_dir.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

#include "support/tether_strings.h"

using tether::Status;
using tether::port::load_or_create_admin_token;
using tether::port::read_admin_token_file;
using tether::test::CountingRandom;
using tether::test::TempDir;

namespace {

std::string contents_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

unsigned mode_of(const std::string& path) {
    struct stat info {};
    CHECK_EQUAL(0, ::lstat(path.c_str(), &info));
    return static_cast<unsigned>(info.st_mode & 07777);
}

}  // namespace

TEST_GROUP(AdminTokenFile) {
    TempDir temp;
    CountingRandom random;
    std::string token;
    bool created = false;
};

TEST(AdminTokenFile, IsCreatedOnceWithMode0600FromTheRandomSource) {
    const std::string path = temp.file("admin.token");
    const mode_t saved = ::umask(0);  // a careless umask changes nothing
    CHECK_EQUAL(Status::kOk, load_or_create_admin_token(path, random, &token, &created));
    ::umask(saved);
    CHECK_TRUE(created);
    STRCMP_EQUAL("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20", token.c_str());
    UNSIGNED_LONGS_EQUAL(0600, mode_of(path));
    STRCMP_EQUAL((token + "\n").c_str(), contents_of(path).c_str());
    // The next start reads it: the token survives restarts.
    std::string again;
    CHECK_EQUAL(Status::kOk, load_or_create_admin_token(path, random, &again, &created));
    CHECK_FALSE(created);
    STRCMP_EQUAL(token.c_str(), again.c_str());
}

TEST(AdminTokenFile, NoEntropyNoToken) {
    random.failing = true;
    const std::string path = temp.file("admin.token");
    CHECK_EQUAL(Status::kUnavailable, load_or_create_admin_token(path, random, &token, &created));
    CHECK_EQUAL(-1, ::access(path.c_str(), F_OK));
}

TEST(AdminTokenFile, AFileOpenToOthersOrALinkIsRefused) {
    const std::string path = temp.write_file("admin.token", "0123456789abcdef0123\n");
    ::chmod(path.c_str(), 0644);
    CHECK_EQUAL(Status::kInvalidArgument,
                load_or_create_admin_token(path, random, &token, &created));
    ::chmod(path.c_str(), 0600);
    CHECK_EQUAL(Status::kOk, load_or_create_admin_token(path, random, &token, &created));
    STRCMP_EQUAL("0123456789abcdef0123", token.c_str());
    const std::string link = temp.file("linked.token");
    CHECK_EQUAL(0, ::symlink(path.c_str(), link.c_str()));
    CHECK_EQUAL(Status::kInvalidArgument,
                load_or_create_admin_token(link, random, &token, &created));
    const std::string dangling = temp.file("dangling.token");
    CHECK_EQUAL(0, ::symlink(temp.file("nowhere").c_str(), dangling.c_str()));
    CHECK_EQUAL(Status::kInvalidArgument,
                load_or_create_admin_token(dangling, random, &token, &created));
    CHECK_EQUAL(-1, ::access(temp.file("nowhere").c_str(), F_OK));  // nothing written through
    const std::string garbage = temp.write_file("garbage.token", "short\n");
    ::chmod(garbage.c_str(), 0600);
    CHECK_EQUAL(Status::kCorrupt, load_or_create_admin_token(garbage, random, &token, &created));
}

TEST(AdminTokenFile, AnOperatorsFileIsReadAsItIs) {
    const std::string path =
        temp.write_file("ops.token", "  s3cr3t-from-the-operator \r\nignored\n");
    ::chmod(path.c_str(), 0640);
    CHECK_EQUAL(Status::kOk, read_admin_token_file(path, &token));
    STRCMP_EQUAL("s3cr3t-from-the-operator", token.c_str());
    CHECK_EQUAL(Status::kNotFound, read_admin_token_file(temp.file("missing"), &token));
    CHECK_EQUAL(Status::kIoError, read_admin_token_file(temp.path(), &token));
    const std::string bad = temp.write_file("bad.token", "has a blank in the middle\n");
    CHECK_EQUAL(Status::kCorrupt, read_admin_token_file(bad, &token));
}

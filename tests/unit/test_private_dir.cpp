// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "support/syscall_faults.h"
#include "support/temp_dir.h"
#include "tether/port/private_dir.h"

using tether::Status;
using tether::port::prepare_private_dir;
using tether::test::SyscallFaults;

namespace {

unsigned mode_of(const std::string& path) {
    struct stat info {};
    CHECK_EQUAL(0, ::lstat(path.c_str(), &info));
    return static_cast<unsigned>(info.st_mode & 07777);
}

}  // namespace

TEST_GROUP(PrivateDir) {
    tether::test::TempDir dir;
    char message[256] = {};
};

TEST(PrivateDir, CreatesAMissingDirectoryWithMode0700WhateverTheUmask) {
    const std::string path = dir.file("state");
    const mode_t previous_umask = ::umask(0777);
    const Status status = prepare_private_dir(path.c_str(), message, sizeof message);
    ::umask(previous_umask);
    CHECK(status == Status::kOk);
    STRCMP_EQUAL("", message);
    UNSIGNED_LONGS_EQUAL(0700, mode_of(path));
}

TEST(PrivateDir, LeavesAPrivateDirectoryAsItIs) {
    const std::string path = dir.file("state");
    CHECK_EQUAL(0, ::mkdir(path.c_str(), 0700));
    CHECK(prepare_private_dir(path.c_str(), message, sizeof message) == Status::kOk);
    STRCMP_EQUAL("", message);
    UNSIGNED_LONGS_EQUAL(0700, mode_of(path));
}

TEST(PrivateDir, TightensALooseModeAndSaysSo) {
    const std::string path = dir.file("state");
    CHECK_EQUAL(0, ::mkdir(path.c_str(), 0700));
    CHECK_EQUAL(0, ::chmod(path.c_str(), 0757));
    CHECK(prepare_private_dir(path.c_str(), message, sizeof message) == Status::kOk);
    STRCMP_EQUAL((path + " was mode 0757; now 0700").c_str(), message);
    UNSIGNED_LONGS_EQUAL(0700, mode_of(path));
}

TEST(PrivateDir, RestoresMissingOwnerBits) {
    const std::string path = dir.file("state");
    CHECK_EQUAL(0, ::mkdir(path.c_str(), 0700));
    CHECK_EQUAL(0, ::chmod(path.c_str(), 0500));
    CHECK(prepare_private_dir(path.c_str(), message, sizeof message) == Status::kOk);
    STRCMP_EQUAL((path + " was mode 0500; now 0700").c_str(), message);
    UNSIGNED_LONGS_EQUAL(0700, mode_of(path));
}

TEST(PrivateDir, RefusesASymbolicLinkAndLeavesItsTargetAlone) {
    const std::string target = dir.file("elsewhere");
    CHECK_EQUAL(0, ::mkdir(target.c_str(), 0700));
    CHECK_EQUAL(0, ::chmod(target.c_str(), 0755));
    const std::string link = dir.file("state");
    CHECK_EQUAL(0, ::symlink(target.c_str(), link.c_str()));
    errno = 0;
    CHECK(prepare_private_dir(link.c_str(), message, sizeof message) == Status::kUnavailable);
    LONGS_EQUAL(ELOOP, errno);
    STRCMP_EQUAL((link + " is a symbolic link (a private directory must not be one)").c_str(),
                 message);
    UNSIGNED_LONGS_EQUAL(0755, mode_of(target));
}

TEST(PrivateDir, RefusesADanglingSymbolicLinkAndCreatesNothing) {
    const std::string target = dir.file("elsewhere");
    const std::string link = dir.file("state");
    CHECK_EQUAL(0, ::symlink(target.c_str(), link.c_str()));
    CHECK(prepare_private_dir(link.c_str(), message, sizeof message) == Status::kUnavailable);
    STRCMP_CONTAINS("is a symbolic link", message);
    struct stat info {};
    CHECK_EQUAL(-1, ::lstat(target.c_str(), &info));
}

TEST(PrivateDir, RefusesSomethingThatIsNotADirectory) {
    const std::string path = dir.write_file("state", "a file");
    errno = 0;
    CHECK(prepare_private_dir(path.c_str(), message, sizeof message) == Status::kUnavailable);
    LONGS_EQUAL(ENOTDIR, errno);
    STRCMP_EQUAL((path + " is not a directory").c_str(), message);
}

TEST(PrivateDir, RefusesADirectoryOfAnotherUserWithoutTouchingIt) {
    const std::string path = dir.file("state");
    CHECK_EQUAL(0, ::mkdir(path.c_str(), 0700));
    CHECK_EQUAL(0, ::chmod(path.c_str(), 0777));
    const unsigned real_euid = static_cast<unsigned>(::geteuid());
    SyscallFaults faults;
    faults.pretend_euid(static_cast<uid_t>(real_euid + 1));
    errno = 0;
    CHECK(prepare_private_dir(path.c_str(), message, sizeof message) == Status::kUnavailable);
    LONGS_EQUAL(EPERM, errno);
    const std::string expected = path + " is owned by uid " + std::to_string(real_euid) +
                                 ", not by this process (uid " + std::to_string(real_euid + 1) +
                                 ")";
    STRCMP_EQUAL(expected.c_str(), message);
    UNSIGNED_LONGS_EQUAL(0777, mode_of(path));
}

TEST(PrivateDir, ASystemCallFailureIsAnIoErrorWithItsReason) {
    const std::string path = dir.path() + "/missing/state";
    errno = 0;
    CHECK(prepare_private_dir(path.c_str(), message, sizeof message) == Status::kIoError);
    LONGS_EQUAL(ENOENT, errno);
    STRCMP_EQUAL(("cannot create " + path + ": No such file or directory").c_str(), message);
}

TEST(PrivateDir, NoPathIsAnInvalidArgumentAndTheMessageAlwaysFits) {
    CHECK(prepare_private_dir(nullptr, message, sizeof message) == Status::kInvalidArgument);
    STRCMP_EQUAL("no private directory named (empty path)", message);
    CHECK(prepare_private_dir("", nullptr, 0) == Status::kInvalidArgument);
    char small[8] = {'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'};
    const std::string file = dir.write_file("state", "a file");
    CHECK(prepare_private_dir(file.c_str(), small, sizeof small) == Status::kUnavailable);
    STRNCMP_EQUAL(file.c_str(), small, sizeof small - 1);
    LONGS_EQUAL('\0', small[sizeof small - 1]);
    const std::string made = dir.file("made");
    CHECK(prepare_private_dir(made.c_str(), nullptr, 0) == Status::kOk);
}

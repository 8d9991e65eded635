// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "support/syscall_faults.h"
#include "support/temp_dir.h"
#include "tether/port/file_storage.h"
#include "tether/state_record.h"

using tether::LoadSource;
using tether::PersistentState;
using tether::StateRecord;
using tether::Status;
using tether::port::FileStorage;
using tether::test::Syscall;
using tether::test::SyscallFaults;

TEST_GROUP(FileStorage) {
    tether::test::TempDir dir;
};

TEST(FileStorage, CreatesTheFileWithMode0600) {
    const std::string path = dir.file("state");
    const mode_t previous_umask = ::umask(0);  // the mode must not depend on it
    FileStorage storage;
    const Status opened = storage.open(path.c_str());
    ::umask(previous_umask);
    CHECK(opened == Status::kOk);
    CHECK(storage.is_open());
    struct stat info = {};
    LONGS_EQUAL(0, ::stat(path.c_str(), &info));
    CHECK(S_ISREG(info.st_mode));
    UNSIGNED_LONGS_EQUAL(0600u, info.st_mode & 07777u);
    UNSIGNED_LONGS_EQUAL(0u, static_cast<unsigned long>(info.st_size));
}

TEST(FileStorage, StateRecordRoundTripsThroughAReopenedFile) {
    const std::string path = dir.file("state");
    PersistentState saved;
    saved.reconnect_attempts = 4;
    saved.session_version = 12;
    saved.last_delivered_downlink_seq = 0x123456789ull;
    saved.next_uplink_seq = 77;
    {
        FileStorage storage;
        CHECK(storage.open(path.c_str()) == Status::kOk);
        StateRecord record(storage);
        CHECK(record.save(PersistentState{}) == Status::kOk);
        CHECK(record.save(saved) == Status::kOk);
    }
    struct stat info = {};
    LONGS_EQUAL(0, ::stat(path.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(2 * StateRecord::kSlotSize, static_cast<unsigned long>(info.st_size));

    FileStorage storage;
    CHECK(storage.open(path.c_str()) == Status::kOk);
    StateRecord record(storage);
    PersistentState loaded;
    LoadSource source = LoadSource::kDefaults;
    CHECK(record.load(&loaded, &source) == Status::kOk);
    CHECK(loaded == saved);
    CHECK(source == LoadSource::kNewestSlot);
    UNSIGNED_LONGS_EQUAL(2u, record.generation());
}

TEST(FileStorage, ReadsBackWritesAtAnyOffset) {
    FileStorage storage;
    CHECK(storage.open(dir.file("bytes").c_str()) == Status::kOk);
    const std::uint8_t data[] = {1, 2, 3, 4, 5};
    CHECK(storage.write(10, data, sizeof data) == Status::kOk);
    CHECK(storage.sync() == Status::kOk);
    std::uint8_t out[20] = {};
    std::size_t read_size = 99;
    CHECK(storage.read(0, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(15u, read_size);  // stops at the end of the file
    for (unsigned i = 0; i < 10; ++i) {
        UNSIGNED_LONGS_EQUAL(0u, out[i]);  // the hole reads as zeros
    }
    for (unsigned i = 0; i < 5; ++i) {
        UNSIGNED_LONGS_EQUAL(data[i], out[10 + i]);
    }
}

TEST(FileStorage, ReadingBeyondTheEndGivesNoBytes) {
    FileStorage storage;
    CHECK(storage.open(dir.file("bytes").c_str()) == Status::kOk);
    std::uint8_t out[8] = {};
    std::size_t read_size = 99;
    CHECK(storage.read(0, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(0u, read_size);
    const std::uint8_t data[] = {9};
    CHECK(storage.write(0, data, 1) == Status::kOk);
    read_size = 99;
    CHECK(storage.read(1, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(0u, read_size);
    read_size = 99;
    CHECK(storage.read(1000, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(0u, read_size);
}

TEST(FileStorage, OpensAnExistingFileWithoutTruncatingIt) {
    const std::string path = dir.write_file("existing", "abc");
    FileStorage storage;
    CHECK(storage.open(path.c_str()) == Status::kOk);
    std::uint8_t out[4] = {};
    std::size_t read_size = 0;
    CHECK(storage.read(0, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(3u, read_size);
    UNSIGNED_LONGS_EQUAL('c', out[2]);
}

TEST(FileStorage, OpenFailsInAMissingDirectory) {
    FileStorage storage;
    errno = 0;
    CHECK(storage.open((dir.path() + "/missing/state").c_str()) == Status::kIoError);
    LONGS_EQUAL(ENOENT, errno);
    CHECK_FALSE(storage.is_open());
    CHECK(storage.open(nullptr) == Status::kIoError);
    LONGS_EQUAL(EINVAL, errno);
}

TEST(FileStorage, OpenFailsOnADirectory) {
    FileStorage storage;
    CHECK(storage.open(dir.path().c_str()) == Status::kIoError);
    LONGS_EQUAL(EISDIR, errno);
    STRCMP_EQUAL(std::strerror(EISDIR), storage.open_error());
    CHECK_FALSE(storage.is_open());
}

TEST(FileStorage, ASymbolicLinkIsNeverFollowed) {
    // Planted by someone who may write the directory: the writes must not
    // land in the file it points to.
    const std::string victim = dir.write_file("victim", "precious");
    const std::string link = dir.file("state");
    CHECK_EQUAL(0, ::symlink(victim.c_str(), link.c_str()));
    FileStorage storage;
    errno = 0;
    CHECK(storage.open(link.c_str()) == Status::kIoError);
    LONGS_EQUAL(ELOOP, errno);
    STRCMP_EQUAL("is a symbolic link", storage.open_error());
    CHECK_FALSE(storage.is_open());
    struct stat info {};
    CHECK_EQUAL(0, ::stat(victim.c_str(), &info));
    UNSIGNED_LONGS_EQUAL(8, info.st_size);
}

TEST(FileStorage, ADanglingSymbolicLinkIsRefusedAndCreatesNothing) {
    const std::string target = dir.file("target");
    const std::string link = dir.file("state");
    CHECK_EQUAL(0, ::symlink(target.c_str(), link.c_str()));
    FileStorage storage;
    CHECK(storage.open(link.c_str()) == Status::kIoError);
    LONGS_EQUAL(ELOOP, errno);
    STRCMP_EQUAL("is a symbolic link", storage.open_error());
    struct stat info {};
    CHECK_EQUAL(-1, ::lstat(target.c_str(), &info));
}

TEST(FileStorage, AFifoIsRefusedWithoutBlocking) {
    const std::string fifo = dir.file("state");
    CHECK_EQUAL(0, ::mkfifo(fifo.c_str(), 0600));
    FileStorage storage;
    CHECK(storage.open(fifo.c_str()) == Status::kIoError);
    LONGS_EQUAL(EINVAL, errno);
    STRCMP_EQUAL("is not a regular file", storage.open_error());
    CHECK_FALSE(storage.is_open());
}

TEST(FileStorage, AFileOfAnotherUserIsRefused) {
    const std::string path = dir.write_file("state", "theirs");
    SyscallFaults faults;
    faults.pretend_euid(::geteuid() + 1);
    FileStorage storage;
    CHECK(storage.open(path.c_str()) == Status::kIoError);
    LONGS_EQUAL(EPERM, errno);
    STRCMP_EQUAL("is owned by another user", storage.open_error());
    CHECK_FALSE(storage.is_open());
}

TEST(FileStorage, OpenErrorIsEmptyAfterASuccessfulOpen) {
    FileStorage storage;
    STRCMP_EQUAL("", storage.open_error());
    CHECK(storage.open(nullptr) == Status::kIoError);
    STRCMP_EQUAL(std::strerror(EINVAL), storage.open_error());
    CHECK(storage.open(dir.file("state").c_str()) == Status::kOk);
    STRCMP_EQUAL("", storage.open_error());
    // Reopening the file it created (now its own) still works.
    CHECK(storage.open(dir.file("state").c_str()) == Status::kOk);
}

TEST(FileStorage, CreatesAFileNamedRelativeToTheWorkingDirectory) {
    char previous[4096];
    CHECK(::getcwd(previous, sizeof previous) != nullptr);
    LONGS_EQUAL(0, ::chdir(dir.path().c_str()));
    dir.file("relative");
    FileStorage storage;
    const Status opened = storage.open("relative");
    LONGS_EQUAL(0, ::chdir(previous));
    CHECK(opened == Status::kOk);
    CHECK(::access((dir.path() + "/relative").c_str(), F_OK) == 0);
}

TEST(FileStorage, EveryCallFailsWhileClosed) {
    FileStorage storage;
    CHECK_FALSE(storage.is_open());
    std::uint8_t byte = 0;
    std::size_t read_size = 99;
    CHECK(storage.read(0, &byte, 1, &read_size) == Status::kIoError);
    UNSIGNED_LONGS_EQUAL(0u, read_size);
    CHECK(storage.write(0, &byte, 1) == Status::kIoError);
    CHECK(storage.sync() == Status::kIoError);

    CHECK(storage.open(dir.file("state").c_str()) == Status::kOk);
    storage.close();
    CHECK_FALSE(storage.is_open());
    CHECK(storage.write(0, &byte, 1) == Status::kIoError);
    storage.close();  // closing twice is harmless
}

TEST(FileStorage, ReopeningSwitchesToTheNewFile) {
    FileStorage storage;
    CHECK(storage.open(dir.write_file("first", "1").c_str()) == Status::kOk);
    CHECK(storage.open(dir.write_file("second", "22").c_str()) == Status::kOk);
    std::uint8_t out[4] = {};
    std::size_t read_size = 0;
    CHECK(storage.read(0, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(2u, read_size);
}

TEST(FileStorage, OpenRejectsAPathLongerThanTheSystemAllows) {
    const std::string path = dir.path() + "/" + std::string(5000, 'a');
    FileStorage storage;
    errno = 0;
    CHECK(storage.open(path.c_str()) == Status::kIoError);
    LONGS_EQUAL(ENAMETOOLONG, errno);
    CHECK_FALSE(storage.is_open());
}

TEST(FileStorage, CreatingAFileSyncsItsDirectoryButOpeningDoesNot) {
    const std::string path = dir.file("state");
    SyscallFaults faults;
    FileStorage storage;
    CHECK(storage.open(path.c_str()) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1u, faults.calls(Syscall::kFsync));
    CHECK(storage.open(path.c_str()) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(1u, faults.calls(Syscall::kFsync));
}

TEST(FileStorage, OpenFailsWhenTheDirectoryCannotBeSynced) {
    SyscallFaults faults;
    faults.fail(Syscall::kFsync, EIO);
    FileStorage storage;
    errno = 0;
    CHECK(storage.open(dir.file("state").c_str()) == Status::kIoError);
    LONGS_EQUAL(EIO, errno);
    CHECK_FALSE(storage.is_open());
}

TEST(FileStorage, OpenFailsWhenTheModeCannotBeSet) {
    SyscallFaults faults;
    faults.fail(Syscall::kFchmod, EPERM);
    FileStorage storage;
    errno = 0;
    CHECK(storage.open(dir.file("state").c_str()) == Status::kIoError);
    LONGS_EQUAL(EPERM, errno);
    CHECK_FALSE(storage.is_open());
}

TEST(FileStorage, InterruptedCallsAreRetried) {
    FileStorage storage;
    CHECK(storage.open(dir.file("state").c_str()) == Status::kOk);
    SyscallFaults faults;
    const std::uint8_t data[] = {1, 2, 3};
    faults.fail(Syscall::kPwrite, EINTR, 2);
    CHECK(storage.write(0, data, sizeof data) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(3u, faults.calls(Syscall::kPwrite));
    faults.fail(Syscall::kFsync, EINTR, 2);
    CHECK(storage.sync() == Status::kOk);
    UNSIGNED_LONGS_EQUAL(3u, faults.calls(Syscall::kFsync));
    faults.fail(Syscall::kPread, EINTR, 2);
    std::uint8_t out[3] = {};
    std::size_t read_size = 0;
    CHECK(storage.read(0, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(3u, read_size);
    UNSIGNED_LONGS_EQUAL(3u, out[2]);
}

TEST(FileStorage, ShortTransfersAreCompletedOneByteAtATime) {
    FileStorage storage;
    CHECK(storage.open(dir.file("state").c_str()) == Status::kOk);
    SyscallFaults faults;
    faults.limit_transfers(1);
    std::uint8_t data[40];
    for (unsigned i = 0; i < sizeof data; ++i) {
        data[i] = static_cast<std::uint8_t>(i + 1u);
    }
    CHECK(storage.write(5, data, sizeof data) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(40u, faults.calls(Syscall::kPwrite));
    std::uint8_t out[50] = {};
    std::size_t read_size = 0;
    CHECK(storage.read(5, out, sizeof out, &read_size) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(40u, read_size);
    UNSIGNED_LONGS_EQUAL(41u, faults.calls(Syscall::kPread));  // the last one sees the end
    MEMCMP_EQUAL(data, out, sizeof data);
}

TEST(FileStorage, DeviceErrorsAreReported) {
    FileStorage storage;
    CHECK(storage.open(dir.file("state").c_str()) == Status::kOk);
    SyscallFaults faults;
    const std::uint8_t data[] = {1, 2, 3};
    faults.fail(Syscall::kPwrite, ENOSPC);
    errno = 0;
    CHECK(storage.write(0, data, sizeof data) == Status::kIoError);
    LONGS_EQUAL(ENOSPC, errno);
    faults.stall_next_write();
    CHECK(storage.write(0, data, sizeof data) == Status::kIoError);
    LONGS_EQUAL(EIO, errno);
    faults.fail(Syscall::kFsync, EIO);
    CHECK(storage.sync() == Status::kIoError);
    faults.fail(Syscall::kPread, EIO);
    std::uint8_t out[3] = {};
    std::size_t read_size = 99;
    CHECK(storage.read(0, out, sizeof out, &read_size) == Status::kIoError);
    UNSIGNED_LONGS_EQUAL(0u, read_size);
    CHECK(storage.write(0, data, sizeof data) == Status::kOk);  // faults were one-shot
}

TEST(FileStorage, StateRecordSurvivesAFailedSyncOnARealFile) {
    const std::string path = dir.file("state");
    FileStorage storage;
    CHECK(storage.open(path.c_str()) == Status::kOk);
    StateRecord record(storage);
    PersistentState first;
    first.next_uplink_seq = 10;
    CHECK(record.save(first) == Status::kOk);
    {
        SyscallFaults faults;
        faults.fail(Syscall::kFsync, EIO);
        PersistentState second;
        second.next_uplink_seq = 20;
        CHECK(record.save(second) == Status::kIoError);
        UNSIGNED_LONGS_EQUAL(1u, record.generation());
    }
    PersistentState third;
    third.next_uplink_seq = 30;
    CHECK(record.save(third) == Status::kOk);
    FileStorage reopened;
    CHECK(reopened.open(path.c_str()) == Status::kOk);
    StateRecord loader(reopened);
    PersistentState loaded;
    LoadSource source = LoadSource::kDefaults;
    CHECK(loader.load(&loaded, &source) == Status::kOk);
    CHECK(loaded == third);
    UNSIGNED_LONGS_EQUAL(2u, loader.generation());
}

// SPDX-License-Identifier: MIT
#include <CppUTest/TestHarness.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "support/temp_dir.h"
#include "tether/port/device_identity.h"

using tether::Status;
using tether::port::read_machine_id;

TEST_GROUP(DeviceIdentity) {
    tether::test::TempDir dir;
    char out[64];

    void setup() override {
        std::memset(out, 'x', sizeof out);
    }
};

TEST(DeviceIdentity, TrimsSurroundingWhitespace) {
    const std::string path = dir.write_file("machine-id", " \t0123456789abcdef\r\n\n");
    CHECK(read_machine_id(path.c_str(), out, sizeof out) == Status::kOk);
    STRCMP_EQUAL("0123456789abcdef", out);
}

TEST(DeviceIdentity, KeepsInnerWhitespace) {
    const std::string path = dir.write_file("machine-id", "ab cd\n");
    CHECK(read_machine_id(path.c_str(), out, sizeof out) == Status::kOk);
    STRCMP_EQUAL("ab cd", out);
}

TEST(DeviceIdentity, MissingFileIsNotFound) {
    CHECK(read_machine_id(dir.file("absent").c_str(), out, sizeof out) == Status::kNotFound);
    STRCMP_EQUAL("", out);
}

TEST(DeviceIdentity, EmptyOrBlankFileIsNotFound) {
    CHECK(read_machine_id(dir.write_file("empty", "").c_str(), out, sizeof out) ==
          Status::kNotFound);
    CHECK(read_machine_id(dir.write_file("blank", " \n\t\r\n").c_str(), out, sizeof out) ==
          Status::kNotFound);
    STRCMP_EQUAL("", out);
}

TEST(DeviceIdentity, ExactFitSucceedsAndOneLessIsTooLarge) {
    const std::string path = dir.write_file("machine-id", "abcdef\n");
    CHECK(read_machine_id(path.c_str(), out, 7) == Status::kOk);
    STRCMP_EQUAL("abcdef", out);
    CHECK(read_machine_id(path.c_str(), out, 6) == Status::kTooLarge);
}

TEST(DeviceIdentity, OversizedFileIsTooLargeEvenForABigBuffer) {
    char big[1024];
    const std::string path = dir.write_file("machine-id", std::string(300, 'a'));
    CHECK(read_machine_id(path.c_str(), big, sizeof big) == Status::kTooLarge);
    const std::string fits = dir.write_file("fits", std::string(255, 'b'));
    CHECK(read_machine_id(fits.c_str(), big, sizeof big) == Status::kOk);
    UNSIGNED_LONGS_EQUAL(255u, std::strlen(big));
}

TEST(DeviceIdentity, RejectsAMissingOutputBuffer) {
    const std::string path = dir.write_file("machine-id", "abc");
    CHECK(read_machine_id(path.c_str(), nullptr, 8) == Status::kInvalidArgument);
    CHECK(read_machine_id(path.c_str(), out, 0) == Status::kInvalidArgument);
}

TEST(DeviceIdentity, DirectoryIsNotFound) {
    CHECK(read_machine_id(dir.path().c_str(), out, sizeof out) == Status::kNotFound);
}

namespace {

// What the documented default lookup should give on this host, computed
// independently: the trimmed contents of the first non-blank file.
std::string expected_default_machine_id() {
    for (const char* path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
        std::ifstream file(path);
        if (!file) {
            continue;
        }
        std::stringstream contents;
        contents << file.rdbuf();
        std::string text = contents.str();
        const auto first = text.find_first_not_of(" \t\r\n");
        if (first == std::string::npos) {
            continue;
        }
        const auto last = text.find_last_not_of(" \t\r\n");
        return text.substr(first, last - first + 1);
    }
    return "";
}

}  // namespace

TEST(DeviceIdentity, NullPathReadsTheSystemMachineId) {
    const std::string expected = expected_default_machine_id();
    const Status status = read_machine_id(nullptr, out, sizeof out);
    if (expected.empty()) {
        CHECK(status == Status::kNotFound);
    } else {
        CHECK(status == Status::kOk);
        STRCMP_EQUAL(expected.c_str(), out);
    }
}

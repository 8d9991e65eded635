// SPDX-License-Identifier: MIT
#include "tether/port/device_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tether::port {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Reads a whole small file; returns its length, or -1 when it cannot be read.
long read_small_file(const char* path, char* buffer, std::size_t capacity) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    std::size_t used = 0;
    while (used < capacity) {
        const ssize_t got = ::read(fd, buffer + used, capacity - used);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        used += static_cast<std::size_t>(got);
    }
    ::close(fd);
    return static_cast<long>(used);
}

}  // namespace

Status read_machine_id(const char* path, char* out, std::size_t capacity) {
    if (out == nullptr || capacity == 0) {
        return Status::kInvalidArgument;
    }
    out[0] = '\0';
    const char* const defaults[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};
    const char* const* candidates = defaults;
    std::size_t candidate_count = 2;
    if (path != nullptr) {
        candidates = &path;
        candidate_count = 1;
    }
    for (std::size_t i = 0; i < candidate_count; ++i) {
        // One spare byte tells "fits" from "too large" before trimming.
        char buffer[256];
        const long length = read_small_file(candidates[i], buffer, sizeof buffer);
        if (length <= 0) {
            continue;
        }
        std::size_t begin = 0;
        std::size_t end = static_cast<std::size_t>(length);
        while (begin < end && is_space(buffer[begin])) {
            ++begin;
        }
        while (end > begin && is_space(buffer[end - 1])) {
            --end;
        }
        if (begin == end) {
            continue;
        }
        if (end - begin + 1 > capacity || static_cast<std::size_t>(length) == sizeof buffer) {
            return Status::kTooLarge;
        }
        std::memcpy(out, buffer + begin, end - begin);
        out[end - begin] = '\0';
        return Status::kOk;
    }
    return Status::kNotFound;
}

}  // namespace tether::port

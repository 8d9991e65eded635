// SPDX-License-Identifier: MIT
#include "admin_token_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "record_log.h"
#include "tether/server/admin_policy.h"

namespace tether::port {
namespace {

// Reads at most a little more than the longest token from an open file.
Status read_token(int fd, std::string* token) {
    char buffer[server::kMaxAdminTokenLength + 64];
    std::size_t used = 0;
    for (;;) {
        const ssize_t got = ::read(fd, buffer + used, sizeof buffer - used);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return Status::kIoError;
        }
        if (got == 0 || used + static_cast<std::size_t>(got) == sizeof buffer) {
            used += static_cast<std::size_t>(got);
            break;
        }
        used += static_cast<std::size_t>(got);
    }
    std::string_view text(buffer, used);
    text = text.substr(0, text.find('\n'));
    while (!text.empty() && (text.back() == '\r' || text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    if (!server::is_valid_admin_token(text)) {
        return Status::kCorrupt;
    }
    token->assign(text.data(), text.size());
    return Status::kOk;
}

std::string parent_of(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

Status read_admin_token_file(const std::string& path, std::string* token) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? Status::kNotFound : Status::kIoError;
    }
    const Status status = read_token(fd, token);
    ::close(fd);
    return status;
}

Status load_or_create_admin_token(const std::string& path, RandomSource& random, std::string* token,
                                  bool* created) {
    *created = false;
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat info {};
        Status status = Status::kIoError;
        if (::fstat(fd, &info) == 0) {
            status =
                !S_ISREG(info.st_mode) || info.st_uid != ::geteuid() || (info.st_mode & 077) != 0
                    ? Status::kInvalidArgument
                    : read_token(fd, token);
        }
        ::close(fd);
        return status;
    }
    if (errno == ELOOP) {
        return Status::kInvalidArgument;  // a link planted where the token goes
    }
    if (errno != ENOENT) {
        return Status::kIoError;
    }
    std::uint8_t bytes[server::kAdminTokenRandomBytes];
    if (!random.fill_random(bytes, sizeof bytes)) {
        return Status::kUnavailable;
    }
    char text[server::kGeneratedAdminTokenLength + 2];
    server::format_admin_token(bytes, text);
    std::memset(bytes, 0, sizeof bytes);
    text[server::kGeneratedAdminTokenLength] = '\n';
    text[server::kGeneratedAdminTokenLength + 1] = '\0';
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return Status::kIoError;
    }
    const bool written = ::fchmod(fd, 0600) == 0 &&
                         server::write_all_at(fd, reinterpret_cast<const std::uint8_t*>(text),
                                              server::kGeneratedAdminTokenLength + 1, 0) &&
                         ::fsync(fd) == 0;
    ::close(fd);
    if (!written || !server::sync_directory(parent_of(path))) {
        ::unlink(path.c_str());
        std::memset(text, 0, sizeof text);
        return Status::kIoError;
    }
    token->assign(text, server::kGeneratedAdminTokenLength);
    std::memset(text, 0, sizeof text);
    *created = true;
    return Status::kOk;
}

}  // namespace tether::port

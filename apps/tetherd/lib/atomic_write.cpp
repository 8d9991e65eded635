#include "atomic_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace tether::daemon {
namespace {

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
    return true;
}

}  // namespace

Status write_file_atomically(const std::string& path, const std::string& contents, mode_t mode) {
    const std::string temporary = path + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return Status::kIoError;
    }
    // fchmod because open() applied the umask, and a reader such as
    // node_exporter runs as another user.
    bool ok = ::fchmod(fd, mode) == 0 && write_all(fd, contents.data(), contents.size()) &&
              ::fsync(fd) == 0;
    ok = (::close(fd) == 0) && ok;
    if (ok && std::rename(temporary.c_str(), path.c_str()) == 0) {
        return Status::kOk;
    }
    ::unlink(temporary.c_str());
    return Status::kIoError;
}

}  // namespace tether::daemon

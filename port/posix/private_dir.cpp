#include "tether/port/private_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tether::port {

Status prepare_private_dir(const char* path, char* error, std::size_t error_size) {
    if (path == nullptr || path[0] == '\0') {
        std::snprintf(error, error_size, "no directory given");
        return Status::kIoError;
    }
    if (::mkdir(path, 0700) != 0 && errno != EEXIST) {
        std::snprintf(error, error_size, "cannot create %s: %s", path, std::strerror(errno));
        return Status::kIoError;
    }
    struct stat info {};
    if (::lstat(path, &info) != 0) {
        std::snprintf(error, error_size, "cannot inspect %s: %s", path, std::strerror(errno));
        return Status::kIoError;
    }
    if (S_ISLNK(info.st_mode) || !S_ISDIR(info.st_mode)) {
        std::snprintf(error, error_size, "%s is not a directory (a symlink is refused)", path);
        return Status::kIoError;
    }
    if (info.st_uid != ::geteuid()) {
        std::snprintf(error, error_size, "%s belongs to uid %u, not to this user (%u)", path,
                      static_cast<unsigned>(info.st_uid), static_cast<unsigned>(::geteuid()));
        return Status::kIoError;
    }
    if ((info.st_mode & 0077) != 0 && ::chmod(path, 0700) != 0) {
        std::snprintf(error, error_size, "cannot make %s private: %s", path, std::strerror(errno));
        return Status::kIoError;
    }
    return Status::kOk;
}

}  // namespace tether::port

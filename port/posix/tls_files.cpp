// SPDX-License-Identifier: MIT
#include "tls_files.h"

#include <fcntl.h>
#include <mbedtls/platform_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace tether::port {
namespace {

// A whole file, NUL-terminated (mbedTLS's PEM parser needs the NUL, counted
// in the length it is given; DER must not count it). Wiped when freed.
class FileBytes {
  public:
    ~FileBytes() {
        if (data_ != nullptr) {
            mbedtls_platform_zeroize(data_, capacity_);
            delete[] data_;
        }
    }

    // Returns 0, or errno.
    int load(const char* path) {
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return errno;
        }
        const int error = read_all(fd);
        ::close(fd);
        return error;
    }

    const unsigned char* data() const { return data_; }

    // The length to hand to mbedTLS: with the NUL for PEM, without for DER.
    std::size_t parse_length() const {
        const bool pem =
            std::strstr(reinterpret_cast<const char*>(data_), "-----BEGIN ") != nullptr;
        return pem ? size_ + 1 : size_;
    }

  private:
    int read_all(int fd) {
        struct stat info {};
        if (::fstat(fd, &info) != 0) {
            return errno;
        }
        if (S_ISDIR(info.st_mode)) {
            return EISDIR;
        }
        // Certificate bundles are at most a few hundred KiB; stop well beyond.
        constexpr std::size_t kMaxSize = 16u * 1024u * 1024u;
        capacity_ = (info.st_size > 0 ? static_cast<std::size_t>(info.st_size) : 0) + 1;
        if (capacity_ > kMaxSize) {
            return EFBIG;
        }
        data_ = new (std::nothrow) unsigned char[capacity_];
        if (data_ == nullptr) {
            return ENOMEM;
        }
        while (size_ + 1 < capacity_) {
            const ssize_t got = ::read(fd, data_ + size_, capacity_ - 1 - size_);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                return errno;
            }
            if (got == 0) {
                break;  // shorter than fstat said: take what is there
            }
            size_ += static_cast<std::size_t>(got);
        }
        data_[size_] = '\0';
        return 0;
    }

    unsigned char* data_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t size_ = 0;
};

}  // namespace

int parse_certificate_file(mbedtls_x509_crt* chain, const char* path, int* os_error) {
    FileBytes file;
    *os_error = file.load(path);
    if (*os_error != 0) {
        return -1;
    }
    return mbedtls_x509_crt_parse(chain, file.data(), file.parse_length());
}

int parse_key_file(mbedtls_pk_context* key, const char* path, int* os_error) {
    FileBytes file;
    *os_error = file.load(path);
    if (*os_error != 0) {
        return -1;
    }
    return mbedtls_pk_parse_key(key, file.data(), file.parse_length(), nullptr, 0);
}

}  // namespace tether::port

// SPDX-License-Identifier: MIT
#include "support/temp_dir.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace tether::test {

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/tether-test-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
        std::perror("mkdtemp");
        std::abort();
    }
    path_ = buffer.data();
}

TempDir::~TempDir() {
    // Newest first, so a directory the test made is empty by its turn.
    for (auto name = files_.rbegin(); name != files_.rend(); ++name) {
        if (::unlink(name->c_str()) != 0) {
            ::rmdir(name->c_str());
        }
    }
    ::rmdir(path_.c_str());
}

std::string TempDir::file(const std::string& name) {
    std::string full = path_ + "/" + name;
    files_.push_back(full);
    return full;
}

std::string TempDir::write_file(const std::string& name, const std::string& contents) {
    const std::string full = file(name);
    std::FILE* stream = std::fopen(full.c_str(), "wb");
    if (stream == nullptr ||
        std::fwrite(contents.data(), 1, contents.size(), stream) != contents.size() ||
        std::fclose(stream) != 0) {
        std::perror(full.c_str());
        std::abort();
    }
    return full;
}

}  // namespace tether::test

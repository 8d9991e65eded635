// SPDX-License-Identifier: MIT
#include "token_file.h"

#include <cerrno>
#include <cstdio>

namespace tether::port {

Status load_token_file(server::TokenStore* store, const std::string& path, std::size_t* bad_line) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return errno == ENOENT ? Status::kNotFound : Status::kIoError;
    }
    std::string text;
    char chunk[4096];
    bool too_large = false;
    for (;;) {
        const std::size_t got = std::fread(chunk, 1, sizeof chunk, file);
        text.append(chunk, got);
        if (text.size() > server::kMaxTokenFileBytes) {
            too_large = true;
            break;
        }
        if (got < sizeof chunk) {
            break;
        }
    }
    const bool read_error = std::ferror(file) != 0;
    std::fclose(file);
    if (read_error) {
        return Status::kIoError;
    }
    if (too_large) {
        return Status::kNoSpace;
    }
    return store->load_text(text, bad_line);
}

}  // namespace tether::port

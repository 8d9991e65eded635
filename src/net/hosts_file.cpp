// SPDX-License-Identifier: MIT
#include "tether/net/hosts_file.h"

#include <cstring>

namespace tether::net {

namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equal_ignoring_case(const char* a, const char* b, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

// The next blank-separated word of line[*pos, end); false at the end of the line.
bool next_word(const char* line, std::size_t end, std::size_t* pos, const char** word,
               std::size_t* size) {
    while (*pos < end && is_blank(line[*pos])) {
        ++*pos;
    }
    if (*pos == end) {
        return false;
    }
    const std::size_t start = *pos;
    while (*pos < end && !is_blank(line[*pos])) {
        ++*pos;
    }
    *word = line + start;
    *size = *pos - start;
    return true;
}

// True when one of the names after the address on line[pos, end) is `name`.
bool line_names(const char* line, std::size_t pos, std::size_t end, const char* name,
                std::size_t name_size) {
    const char* word = nullptr;
    std::size_t size = 0;
    while (next_word(line, end, &pos, &word, &size)) {
        if (size == name_size && equal_ignoring_case(word, name, size)) {
            return true;
        }
    }
    return false;
}

bool already_found(const IpAddress* found, std::size_t count, const IpAddress& address) {
    for (std::size_t i = 0; i < count; ++i) {
        if (found[i] == address) {
            return true;
        }
    }
    return false;
}

}  // namespace

std::size_t lookup_hosts(const char* text, std::size_t len, const char* name, IpAddress* out,
                         std::size_t max) {
    std::size_t name_size = std::strlen(name);
    if (name_size > 0 && name[name_size - 1] == '.') {
        --name_size;
    }
    std::size_t count = 0;
    std::size_t pos = 0;
    while (name_size > 0 && pos < len && count < max) {
        std::size_t line_end = pos;
        while (line_end < len && text[line_end] != '\n') {
            ++line_end;
        }
        std::size_t content_end = pos;
        while (content_end < line_end && text[content_end] != '#') {
            ++content_end;
        }
        std::size_t cursor = pos;
        const char* word = nullptr;
        std::size_t size = 0;
        IpAddress address;
        if (next_word(text, content_end, &cursor, &word, &size) &&
            parse_ip_address(word, size, &address) &&
            line_names(text, cursor, content_end, name, name_size) &&
            !already_found(out, count, address)) {
            out[count++] = address;
        }
        pos = line_end + 1;
    }
    return count;
}

}  // namespace tether::net

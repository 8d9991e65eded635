// SPDX-License-Identifier: MIT
#include "cli.h"

#include <cstdio>
#include <cstring>

#ifndef TETHER_VERSION
#error "TETHER_VERSION comes from CMake (apps/CMakeLists.txt)"
#endif

namespace tether::cli {

const char* version() {
    return TETHER_VERSION;
}

int print_version(const char* program) {
    std::printf("%s %s\n", program, TETHER_VERSION);
    return 0;
}

void unknown_option_message(const char* arg, char* out, std::size_t capacity) {
    std::snprintf(out, capacity, "unknown option '%s' (see --help)", arg);
}

void needs_value_message(const char* name, char* out, std::size_t capacity) {
    std::snprintf(out, capacity, "option '--%s' needs a value (see --help)", name);
}

void takes_no_value_message(const char* name, char* out, std::size_t capacity) {
    std::snprintf(out, capacity, "option '--%s' takes no value (see --help)", name);
}

namespace {

int report(const char* program, const char* message) {
    std::fprintf(stderr, "%s: %s\n", program, message);
    return kExitUsage;
}

}  // namespace

int unknown_option(const char* program, const char* arg) {
    char message[256];
    unknown_option_message(arg, message, sizeof message);
    return report(program, message);
}

int needs_value(const char* program, const char* name) {
    char message[128];
    needs_value_message(name, message, sizeof message);
    return report(program, message);
}

int takes_no_value(const char* program, const char* name) {
    char message[128];
    takes_no_value_message(name, message, sizeof message);
    return report(program, message);
}

int unexpected_argument(const char* program, const char* arg) {
    std::fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", program, arg);
    return kExitUsage;
}

bool ArgReader::next() {
    ++index_;
    name_[0] = '\0';
    inline_value_ = nullptr;
    if (index_ >= argc_) {
        index_ = argc_ - 1;
        return false;
    }
    const char* arg = argv_[index_];
    if (arg[0] == '-' && arg[1] == '-' && arg[2] != '\0') {
        const char* equals = std::strchr(arg + 2, '=');
        const std::size_t length =
            equals != nullptr ? static_cast<std::size_t>(equals - (arg + 2)) : std::strlen(arg + 2);
        if (length < sizeof name_) {
            std::memcpy(name_, arg + 2, length);
            name_[length] = '\0';
            inline_value_ = equals != nullptr ? equals + 1 : nullptr;
        }
    }
    return true;
}

bool ArgReader::is_option() const {
    const char* arg = argv_[index_];
    return arg[0] == '-' && arg[1] != '\0';
}

bool ArgReader::is(const char* name) const {
    if (std::strcmp(name, "help") == 0 && std::strcmp(argv_[index_], "-h") == 0) {
        return true;
    }
    return name_[0] != '\0' && std::strcmp(name_, name) == 0;
}

const char* ArgReader::value() {
    if (inline_value_ != nullptr) {
        return inline_value_;
    }
    if (index_ + 1 >= argc_) {
        return nullptr;
    }
    return argv_[++index_];
}

}  // namespace tether::cli

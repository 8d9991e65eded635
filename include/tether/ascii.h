// SPDX-License-Identifier: MIT
// Locale-free character helpers shared by the parsers.
#pragma once

namespace tether {

/// The value of a hexadecimal digit (either case), or -1 for anything else.
constexpr int hex_digit_value(char c) {
    return (c >= '0' && c <= '9')   ? c - '0'
           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                    : -1;
}

}  // namespace tether

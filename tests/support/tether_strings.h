// SPDX-License-Identifier: MIT
// Lets CppUTest's CHECK_EQUAL print any tether enum by its to_string() name.
#pragma once

#include <CppUTest/SimpleString.h>

#include <type_traits>
#include <utility>

#include "tether/status.h"

template <typename Enum, typename = std::enable_if_t<std::is_enum<Enum>::value>,
          typename = decltype(to_string(std::declval<Enum>()))>
SimpleString StringFrom(Enum value) {
    return SimpleString(to_string(value));
}

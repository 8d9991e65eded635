// Helpers on cJSON trees shared by the device-state codec's files
// (json_document.cpp, state_messages.cpp); private to tether_net.
#pragma once

#include <cjson/cJSON.h>

#include <cstddef>

#include "tether/net/tether_v1.h"

namespace tether::net::v1::json {

/// An object or array nested at most kMaxStateDepth deep with no object
/// holding a key twice; scalars are always well formed.
bool well_formed(const cJSON* item);

/// Writes `item` as compact JSON: no whitespace, strings escaped minimally
/// (only '"', '\\' and control characters), integers up to 2^53 as integers
/// and other numbers in the shortest form that reads back as the same double.
/// cJSON's own printer rounds numbers to 15 digits, which would change a
/// device's values on their way through. kBufferTooSmall when it does not
/// fit; kBadField for a number that is not finite.
V1Status print_compact(const cJSON* item, char* out, std::size_t capacity, std::size_t* length);

}  // namespace tether::net::v1::json

// SPDX-License-Identifier: MIT
// The text form of a public-key pin (the SHA-256 of a certificate's
// SubjectPublicKeyInfo), as people copy it from openssl.
#pragma once

#include <cstdint>

namespace tether::net {

/// Parses 64 hex digits (either case), or 44 canonical base64 characters
/// ending in one '=', into the 32 digest bytes. Returns false for anything
/// else (leaving `out` unspecified).
bool parse_sha256_pin(const char* text, std::uint8_t out[32]);

}  // namespace tether::net

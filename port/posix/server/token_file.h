// SPDX-License-Identifier: MIT
// Reads tether-server's tokens file (format: tether/server/tokens.h).
#pragma once

#include <cstddef>
#include <string>

#include "tether/server/tokens.h"
#include "tether/status.h"

namespace tether::port {

/// Replaces the tokens in `store` with those of the file at `path`. kOk;
/// kNotFound (no such file); kIoError (unreadable); kNoSpace (larger than
/// server::kMaxTokenFileBytes); otherwise what TokenStore::load_text says.
Status load_token_file(server::TokenStore* store, const std::string& path,
                       std::size_t* bad_line = nullptr);

}  // namespace tether::port

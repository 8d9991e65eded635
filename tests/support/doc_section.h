// SPDX-License-Identifier: MIT
// Reads a marked section of a document in docs/, so tests can keep tables in
// the docs identical to the tables in code.
#pragma once

#include <string>
#include <vector>

namespace tether::test {

/// The lines of `relative_path` (from the repository root) strictly between
/// "<!-- NAME:begin -->" and "<!-- NAME:end -->", without trailing spaces.
/// Empty when the file or a marker is missing.
std::vector<std::string> doc_section(const char* relative_path, const char* name);

/// Joins lines with '\n' (for failure messages that show the expected text).
std::string join_lines(const std::vector<std::string>& lines);

}  // namespace tether::test

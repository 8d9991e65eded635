// SPDX-License-Identifier: MIT
// The command-line conventions every tether program follows: --version,
// -h/--help, "--opt value" and "--opt=value", one wording for an unknown
// option and for a missing value, exit code 2 for bad usage.
//
//   tether::cli::ArgReader args(argc, argv);
//   while (args.next()) {
//       if (!args.is_option()) { positional(args.text()); continue; }
//       if (args.is("version")) { return tether::cli::print_version("tool"); }
//       if (args.is("count")) {
//           const char* value = args.value();  // "--count 3" or "--count=3"
//           if (value == nullptr) { return tether::cli::needs_value("tool", args.name()); }
//       }
//   }
#pragma once

#include <cstddef>

namespace tether::cli {

/// Bad usage, in every program.
constexpr int kExitUsage = 2;

/// The project version (CMake's PROJECT_VERSION, compiled into cli.cpp only).
const char* version();

/// Prints "<program> <version>" on standard output; returns 0 (the exit code).
int print_version(const char* program);

/// "unknown option '<arg>' (see --help)", without the program's name, into
/// `out` (truncated to `capacity`); for parsers that return their message.
void unknown_option_message(const char* arg, char* out, std::size_t capacity);

/// "option '--<name>' needs a value (see --help)", into `out`.
void needs_value_message(const char* name, char* out, std::size_t capacity);

/// "option '--<name>' takes no value (see --help)", into `out`.
void takes_no_value_message(const char* name, char* out, std::size_t capacity);

/// Prints "<program>: unknown option '<arg>' (see --help)" on standard error;
/// returns kExitUsage.
int unknown_option(const char* program, const char* arg);

/// Prints "<program>: option '--<name>' needs a value (see --help)" on
/// standard error; returns kExitUsage.
int needs_value(const char* program, const char* name);

/// Prints "<program>: option '--<name>' takes no value (see --help)"; returns
/// kExitUsage.
int takes_no_value(const char* program, const char* name);

/// Prints "<program>: unexpected argument '<arg>' (see --help)" (a program that
/// takes no positional arguments was given one); returns kExitUsage.
int unexpected_argument(const char* program, const char* arg);

/// Walks argv. An option is any argument that starts with '-' and is longer
/// than "-" ("-" alone is positional, as for "read standard input"). A long
/// option "--name=value" is split at the first '='.
class ArgReader {
  public:
    ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

    /// Advances to the next argument; false when there is none.
    bool next();

    /// The whole current argument, as given.
    const char* text() const { return argv_[index_]; }

    /// True when the current argument is an option (see the class comment).
    bool is_option() const;

    /// True for "--<name>" and "--<name>=...", and for "-h" when `name` is "help".
    bool is(const char* name) const;

    /// A long option's name without "--" and without "=value"; "" for anything
    /// else (a short option other than -h, a name longer than 63 characters).
    const char* name() const { return name_; }

    /// True when the current argument is a long option with "=value".
    bool has_inline_value() const { return inline_value_ != nullptr; }

    /// The option's value: the text after '=', else the next argument (which
    /// is consumed). nullptr when there is none.
    const char* value();

  private:
    int argc_;
    char** argv_;
    int index_ = 0;
    char name_[64] = {};
    const char* inline_value_ = nullptr;
};

}  // namespace tether::cli

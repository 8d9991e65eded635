// SPDX-License-Identifier: MIT
// Bearer-token credentials providers for tether::Client.
//
// Tokens never appear in logs; buffers that held them are wiped after use.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "tether/client.h"
#include "tether/status.h"

namespace tether::port {

/// Why a token file gave no token.
enum class TokenFileProblem : std::uint8_t {
    kNone,        ///< the last read found a token (or there was none yet)
    kMissing,     ///< the file, or a directory on its path, does not exist
    kUnreadable,  ///< opening or reading it failed otherwise (permissions, a directory, ...)
    kEmpty,       ///< the first line holds no token (an empty file, or a blank first line)
    kTooLong,     ///< the first line is longer than kMaxToken bytes, or than the header allows
};

/// "none", "missing", "unreadable", "empty", "too_long"; "unknown" otherwise.
const char* to_string(TokenFileProblem problem);

/// The first line of a file, read afresh for every connection attempt, so a
/// token rotated on disk (by a provisioning agent) is picked up at once.
///
/// When the file gives no token, no Authorization header is sent and the
/// server answers 401; problem() says why, so the loop can log it once per
/// distinct problem (and once more when it is solved) and count failures():
///
///   if (credentials.problem_generation() != logged_generation) {
///       logged_generation = credentials.problem_generation();
///       if (credentials.problem_kind() == TokenFileProblem::kNone) {
///           log_info("token file %s: readable again", path);
///       } else {
///           log_warn("token file %s: %s", path, credentials.problem());
///       }
///   }
///   metrics.token_failures = credentials.failures();
class TokenFileCredentials final : public CredentialsProvider {
  public:
    /// Longest token taken from the first line; a longer line is refused, never cut.
    static constexpr std::size_t kMaxToken = 1024;

    explicit TokenFileCredentials(const char* path) : path_(path) {}
    /// Reads the file; false (no header) on any problem, which problem() then names.
    bool authorization(char* out, std::size_t capacity) override;
    void refresh() override {}  // read afresh anyway

    /// What the last authorization() found: kNone when it gave a token.
    TokenFileProblem problem_kind() const { return problem_; }
    /// The same for a log line, without the path and never with token bytes:
    /// "" for kNone, else e.g. "missing (No such file or directory)",
    /// "unreadable (Permission denied)", "empty (no token on the first line)",
    /// "too long (the first line exceeds 1024 bytes)".
    const char* problem() const { return problem_text_; }
    /// Changes whenever problem() changes: to another kind, to the same kind
    /// with another errno, or back to kNone. Starts at 0 (nothing read yet).
    std::uint32_t problem_generation() const { return generation_; }
    /// authorization() calls that found no token, over the object's life.
    std::uint64_t failures() const { return failures_; }

  private:
    bool report(TokenFileProblem problem, int detail);

    const char* path_;
    TokenFileProblem problem_ = TokenFileProblem::kNone;
    int problem_detail_ = 0;  // errno, or the length limit for kTooLong
    std::uint32_t generation_ = 0;
    std::uint64_t failures_ = 0;
    char problem_text_[96] = {};
};

/// The first line a command prints (run with /bin/sh -c). The command runs
/// once at start (fetch_now) and again whenever the server rejects the token
/// (refresh), in the background: the poll loop watches fd() and calls
/// on_readable(), so a slow command never stalls the loop. Until the new
/// token arrives, the previous one is used.
class TokenCommandCredentials final : public CredentialsProvider {
  public:
    static constexpr std::size_t kMaxToken = 1024;

    explicit TokenCommandCredentials(const char* command) : command_(command) {}
    ~TokenCommandCredentials() override;
    TokenCommandCredentials(const TokenCommandCredentials&) = delete;
    TokenCommandCredentials& operator=(const TokenCommandCredentials&) = delete;

    /// Runs the command and waits at most `timeout_ms` for its token (at
    /// start-up, before the loop runs). kOk, kUnavailable (it failed, printed
    /// nothing or timed out), kIoError (it could not be started).
    Status fetch_now(int timeout_ms);

    bool authorization(char* out, std::size_t capacity) override;
    /// Starts the command in the background unless it is already running.
    void refresh() override;

    /// The pipe to watch for read while the command runs, else -1.
    int fd() const { return fd_; }
    /// Reads what the command printed; at its end, takes the token.
    void on_readable();
    bool has_token() const { return token_length_ > 0; }
    /// How many times the command failed (non-zero exit, no output).
    std::size_t failures() const { return failures_; }

  private:
    bool start();
    void finish();
    void kill_command();

    const char* command_;
    pid_t child_ = -1;
    int fd_ = -1;
    char output_[kMaxToken + 1] = {};
    std::size_t output_length_ = 0;
    char token_[kMaxToken + 1] = {};
    std::size_t token_length_ = 0;
    std::size_t failures_ = 0;
};

}  // namespace tether::port

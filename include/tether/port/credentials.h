// Bearer-token credentials providers for tether::Client.
//
// Tokens never appear in logs; buffers that held them are wiped after use.
#pragma once

#include <sys/types.h>

#include <cstddef>

#include "tether/client.h"
#include "tether/status.h"

namespace tether::port {

/// The first line of a file, read afresh for every connection attempt, so a
/// token rotated on disk (by a provisioning agent) is picked up at once.
class TokenFileCredentials final : public CredentialsProvider {
  public:
    explicit TokenFileCredentials(const char* path) : path_(path) {}
    bool authorization(char* out, std::size_t capacity) override;
    void refresh() override {}  // read afresh anyway

  private:
    const char* path_;
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

// SPDX-License-Identifier: MIT
// One run of a configured command through `/bin/sh -c`, driven without
// waiting: its standard input is fed from a buffer, its standard output is
// kept (bounded), it runs in its own process group and is killed with the
// group when it outlives its timeout.
//
// Used by the downlink output (one run per message, its standard output left
// to the daemon's) and by the device-state agent (the desired and report
// commands, whose output is read). Nothing blocks: the loop calls tick(now)
// every iteration while running(), watches pending_fd() for writing, and
// sleeps no longer than a short interval meanwhile.
//
//   ShellCommand command(ShellCommand::kCaptureOutput, 8192);
//   const std::vector<std::string> env = {"TETHER_DESIRED_VERSION=7"};
//   if (!command.start("apply-config", input.data(), input.size(), false, &env, now,
//                      10000)) { ... errno ... }
//   while (!command.tick(now)) { ... loop ... }
//   if (command.end() == CommandEnd::kSucceeded) { use(command.output()); }
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tether/time.h"

namespace tether::daemon {

enum class CommandEnd : std::uint8_t {
    kRunning,    ///< not finished yet
    kSucceeded,  ///< exited with status 0
    kExited,     ///< exited with another status (status())
    kSignaled,   ///< died by a signal (status())
    kTimedOut,   ///< outlived its timeout and was killed
    kLost,       ///< its exit status was taken by someone else
};
/// "running", "succeeded", "exited", "signaled", "timed_out", "lost".
const char* to_string(CommandEnd end);

class ShellCommand {
  public:
    /// Whether the command's standard output is read (kCaptureOutput: at most
    /// `output_limit` bytes are kept; more is read and discarded, and
    /// output_overflowed() says so) or is the daemon's own (kInheritOutput).
    enum Output : std::uint8_t { kInheritOutput, kCaptureOutput };
    ShellCommand(Output output, std::size_t output_limit);
    ~ShellCommand();  ///< kills and reaps a command still running
    ShellCommand(const ShellCommand&) = delete;
    ShellCommand& operator=(const ShellCommand&) = delete;

    /// Starts `command` with `input` (and a newline after it when
    /// `add_newline`) on its standard input, closed after it, and
    /// `environment` ("NAME=value", may be null) added to the daemon's own.
    /// `input` is not copied: it must stay valid until the command has ended.
    /// False when it could not be started (errno says why) or one is still
    /// running.
    bool start(const char* command, const char* input, std::size_t input_size, bool add_newline,
               const std::vector<std::string>* environment, TimeMs now, std::uint32_t timeout_ms);

    /// Feeds input, collects output, enforces the timeout, reaps. True once
    /// the command has ended (then end() says how).
    bool tick(TimeMs now);

    /// Writes what the command's input still lacks, as far as it takes it now.
    void feed();
    /// Kills the command's process group at once; tick() reaps it.
    void kill();

    bool running() const { return child_ > 0; }
    /// The command's input while bytes remain to be written to it, else -1.
    int pending_fd() const { return stdin_fd_; }
    /// When a running command will be killed; false when none runs or it was killed.
    bool deadline(TimeMs* at) const;
    CommandEnd end() const { return end_; }
    int status() const { return status_; }  ///< waitpid() status for kExited and kSignaled
    const std::string& output() const { return output_; }
    bool output_overflowed() const { return overflowed_; }

  private:
    void collect();
    bool reap();
    void kill_group();
    void close_fds();

    Output output_mode_;
    std::size_t output_limit_;
    pid_t child_ = -1;
    int stdin_fd_ = -1;
    int stdout_fd_ = -1;
    const char* input_ = nullptr;
    std::size_t input_size_ = 0;
    bool add_newline_ = false;
    std::size_t written_ = 0;  // of input_ and its newline
    std::string output_;
    bool overflowed_ = false;
    bool killed_ = false;
    TimeMs deadline_ = 0;
    CommandEnd end_ = CommandEnd::kRunning;
    int status_ = -1;
};

}  // namespace tether::daemon

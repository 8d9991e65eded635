// One run of a configured command through `/bin/sh -c`, driven without
// waiting: its standard input is fed from a buffer, its standard output is
// kept (bounded), it runs in its own process group and is killed with the
// group when it outlives its timeout.
//
// Used by the device-state agent (state_agent.h) for the desired and report
// commands. Nothing blocks: the loop calls tick(now) every iteration while
// running() and sleeps no longer than a short interval meanwhile.
//
//   ShellCommand command(8192);
//   if (!command.start("apply-config", input.data(), input.size(),
//                      {"TETHER_DESIRED_VERSION=7"}, now, 10000)) { ... errno ... }
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
    /// Keeps at most `output_limit` bytes of standard output; more is read
    /// and discarded, and output_overflowed() says so.
    explicit ShellCommand(std::size_t output_limit);
    ~ShellCommand();  ///< kills and reaps a command still running
    ShellCommand(const ShellCommand&) = delete;
    ShellCommand& operator=(const ShellCommand&) = delete;

    /// Starts `command` with `input` on its standard input (closed after it)
    /// and `environment` ("NAME=value") added to the daemon's own. False when
    /// it could not be started (errno says why) or one is still running.
    bool start(const char* command, const char* input, std::size_t input_size,
               const std::vector<std::string>& environment, TimeMs now, std::uint32_t timeout_ms);

    /// Feeds input, collects output, enforces the timeout, reaps. True once
    /// the command has ended (then end() says how).
    bool tick(TimeMs now);

    bool running() const { return child_ > 0; }
    CommandEnd end() const { return end_; }
    int status() const { return status_; }  ///< waitpid() status for kExited and kSignaled
    const std::string& output() const { return output_; }
    bool output_overflowed() const { return overflowed_; }

  private:
    void feed();
    void collect();
    bool reap();
    void kill_group();
    void close_fds();

    std::size_t output_limit_;
    pid_t child_ = -1;
    int stdin_fd_ = -1;
    int stdout_fd_ = -1;
    std::string input_;
    std::size_t written_ = 0;
    std::string output_;
    bool overflowed_ = false;
    bool killed_ = false;
    TimeMs deadline_ = 0;
    CommandEnd end_ = CommandEnd::kRunning;
    int status_ = -1;
};

}  // namespace tether::daemon

// tether-server's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tether/server/auth_throttle.h"

namespace tether::server {

/// A HOST:PORT given on the command line; port 0 lets the kernel choose.
struct ListenAddress {
    bool enabled = false;
    std::string host;
    std::uint16_t port = 0;
};

struct Options {
    ListenAddress listen;
    ListenAddress tls_listen;
    ListenAddress admin;
    std::string cert_file;
    std::string key_file;
    std::string client_ca_file;
    std::string data_dir;
    std::string tokens_file;
    std::string admin_token_file;  ///< empty: <data_dir>/admin.token, created when missing
    std::uint32_t admin_timeout_ms = 5000;
    std::size_t admin_max_connections = 16;
    std::uint32_t ack_every = 64;
    std::uint32_t ack_interval_ms = 200;
    std::uint32_t ping_interval_ms = 30000;
    std::uint32_t ping_timeout_ms = 10000;
    std::uint32_t close_timeout_ms = 2000;
    std::size_t max_connections = 4096;
    std::size_t max_message_size = 64 * 1024;
    std::size_t replay_capacity = 1024;
    std::size_t max_open_sessions = 256;
    AuthThrottleConfig auth_throttle;  ///< failed upgrades per source address
};

/// Exit codes, documented in --help.
enum ExitCode : int {
    kExitOk = 0,
    kExitRuntime = 1,  ///< a listener, the store or the TLS files failed
    kExitUsage = 2,
};

/// Parses argv. Returns true to run; false to exit with *exit_code (after
/// --help: 0; on a usage error, already reported on stderr: 2).
bool parse_options(int argc, char** argv, Options* options, int* exit_code);

/// Splits "HOST:PORT" or "[V6]:PORT". False when malformed.
bool parse_listen_address(const char* text, ListenAddress* out);

extern const char* const kUsage;

}  // namespace tether::server

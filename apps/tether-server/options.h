// SPDX-License-Identifier: MIT
// tether-server's command line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

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
    /// Device state (PROTOCOL.md 9): answer "state" to hellos that offer it
    /// (--no-state: never).
    bool state = true;

    /// Where sessions live: the record logs under data_dir, or Redis.
    enum class Store : std::uint8_t { kFile, kRedis } store = Store::kFile;
    ListenAddress redis;                   ///< --redis: the primary, numeric HOST:PORT
    std::vector<ListenAddress> sentinels;  ///< --redis-sentinel: find the primary here
    std::string redis_master = "tether";   ///< --redis-master: Sentinel's name for it
    /// --redis-durability: 0 = ACK after Redis replied; N = after WAIT saw N replicas.
    std::uint32_t redis_replicas = 0;
    std::uint32_t redis_wait_timeout_ms = 1000;
    std::string redis_prefix = "tether";
    std::uint64_t redis_uplink_maxlen = 1000000;
    std::string instance_id;  ///< --instance-id (default: host name and pid)
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

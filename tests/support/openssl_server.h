// SPDX-License-Identifier: MIT
// Test-only TLS peers: certificates made by the openssl command line in a
// private temporary directory, and `openssl s_server` run on 127.0.0.1 as a
// child process whose output the test can read. Needs the openssl binary
// (tools/install-deps test).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace tether::test {

/// EC P-256 keys and certificates, made once per test process.
struct TestPki {
    std::string ca_cert;      ///< signs server, wrong_name
    std::string server_cert;  ///< SAN DNS:localhost, IP:127.0.0.1, IP:::1
    std::string server_key;
    std::string server_pin;       ///< SHA-256 of server's SPKI, 32 raw bytes
    std::string wrong_name_cert;  ///< signed by ca_cert, SAN DNS:wrong.example only
    std::string wrong_name_key;
    std::string unrelated_ca_cert;  ///< a CA that signed nothing used here
    std::string client_ca_cert;     ///< signs client_cert
    std::string client_cert;
    std::string client_key;

    /// The shared set; aborts the process when openssl fails.
    static const TestPki& get();
};

/// Runs `command` with /bin/sh; true when it exits with status 0.
bool run_shell(const std::string& command);

class OpenSslServer {
  public:
    OpenSslServer() = default;
    ~OpenSslServer();
    OpenSslServer(const OpenSslServer&) = delete;
    OpenSslServer& operator=(const OpenSslServer&) = delete;

    /// Starts `openssl s_server -accept 127.0.0.1:<free port> <args...>` and
    /// waits until it listens. s_server cannot bind port 0, so a free port is
    /// found by binding 0 and closing, retrying when someone else takes it.
    bool start(const std::vector<std::string>& args);
    std::uint16_t port() const { return port_; }

    /// Everything the server printed (stdout and stderr) so far, after
    /// waiting up to `timeout_ms` for `needle` to appear.
    bool wait_for_output(const char* needle, int timeout_ms);
    const std::string& output() const { return output_; }

  private:
    bool launch(std::uint16_t port, const std::vector<std::string>& args);
    void stop();
    pid_t pid_ = -1;
    int output_fd_ = -1;
    int input_fd_ = -1;
    std::uint16_t port_ = 0;
    std::string output_;
};

/// A port on 127.0.0.1 where nothing listens (kept bound while alive).
class ClosedPort {
  public:
    ClosedPort();
    ~ClosedPort();
    ClosedPort(const ClosedPort&) = delete;
    ClosedPort& operator=(const ClosedPort&) = delete;
    std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

/// Milliseconds of CLOCK_MONOTONIC, for poll deadlines.
std::int64_t monotonic_ms();

}  // namespace tether::test

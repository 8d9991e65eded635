// SPDX-License-Identifier: MIT
// A scripted Connection for client tests: records every open(), scripts how
// establishment goes, and forwards the byte stream to a FakeTransport that
// tests fill with server bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "fakes/fake_transport.h"
#include "tether/transport.h"

namespace tether::test {

class FakeConnection final : public Connection {
  public:
    struct Opened {
        net::IpAddress address;
        std::uint16_t port;
        bool tls;
        std::string server_name;
    };

    /// The stream of the current connection; replaced by a fresh one on every open().
    FakeTransport& stream() { return *stream_; }

    /// The next open() fails at once with `error`.
    void fail_next_open(TransportError error) { open_failures_.push_back(error); }
    /// establish() returns kWouldBlock `count` times before the TCP connect completes.
    void set_connect_delay(std::size_t count) { connect_delay_ = count; }
    /// establish() returns kWouldBlock `count` times during the TLS handshake.
    void set_tls_delay(std::size_t count) { tls_delay_ = count; }
    /// The next establish() reports that the connect (or TLS handshake) failed with `error`.
    void fail_establish(TransportError error) { establish_error_ = error; }
    /// What certificate_problem() answers (after a kCertificateInvalid failure).
    void set_certificate_problem(CertificateProblem problem) { certificate_problem_ = problem; }
    CertificateProblem certificate_problem() const override { return certificate_problem_; }

    const std::vector<Opened>& opened() const { return opened_; }
    std::size_t close_calls() const { return close_calls_; }
    bool is_open() const { return open_; }

    Status open(const net::IpAddress& address, std::uint16_t port, bool tls,
                const char* server_name, TransportError* error) override;
    bool tcp_connected() const override { return tcp_connected_; }
    Status start_tls(const char* server_name, TransportError* error) override;
    /// The names start_tls() was called with, in order.
    const std::vector<std::string>& tls_started() const { return tls_started_; }
    /// The next start_tls() fails at once with `error`.
    void fail_next_start_tls(TransportError error) { start_tls_failure_ = error; }
    IoResult establish() override;
    IoResult read(std::uint8_t* out, std::size_t size) override;
    IoResult write(const std::uint8_t* data, std::size_t size) override;
    IoResult writev(const IoSlice* slices, std::size_t count) override;
    std::size_t pending() const override { return stream_->pending(); }
    PollInterest interest(bool want_read, bool want_write) const override {
        return PollInterest{want_read, want_write};
    }
    int fd() const override { return open_ ? 1000 : -1; }
    void close() override;

  private:
    std::deque<FakeTransport> streams_{1};  // a deque keeps references to old streams valid
    FakeTransport* stream_ = &streams_.front();
    std::vector<TransportError> open_failures_;
    std::vector<Opened> opened_;
    std::vector<std::string> tls_started_;
    TransportError start_tls_failure_ = TransportError::kNone;
    std::size_t connect_delay_ = 0;
    std::size_t connect_polls_ = 0;
    std::size_t tls_delay_ = 0;
    std::size_t tls_polls_ = 0;
    TransportError establish_error_ = TransportError::kNone;
    CertificateProblem certificate_problem_ = CertificateProblem::kNone;
    bool open_ = false;
    bool tcp_connected_ = false;
    bool tls_ = false;
    std::size_t close_calls_ = 0;
};

}  // namespace tether::test

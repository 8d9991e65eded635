// SPDX-License-Identifier: MIT
// What tether-bench-link writes on stdout: one logfmt line per event, each
// stamped t_us = CLOCK_MONOTONIC in microseconds (the clock behind
// port::monotonic_now() and Python's time.monotonic() on Linux), so the
// driver can put its own events (firewall rule in, server restarted) on the
// same time line.
#pragma once

#include <cstdint>

#include "tether/client.h"
#include "tether/port/posix_transport.h"

namespace tether::bench {

/// CLOCK_MONOTONIC in microseconds.
std::uint64_t monotonic_us();
/// CPU time of this process (CLOCK_PROCESS_CPUTIME_ID) in seconds.
double process_cpu_s();
/// getrusage(RUSAGE_SELF) user and system seconds.
void self_rusage(double* user_s, double* system_s);
/// Sum of /proc/PID/task/*/schedstat run times in seconds; negative when unreadable.
double other_process_cpu_s(long pid);

/// The client's connection, with the time of every read that returned bytes:
/// the last sign of life before a blackhole.
class RecordingConnection final : public Connection {
  public:
    RecordingConnection(port::PosixTransport& inner, bool log_reads)
        : inner_(inner), log_reads_(log_reads) {}

    Status open(const net::IpAddress& address, std::uint16_t port, bool tls,
                const char* server_name, TransportError* error) override {
        return inner_.open(address, port, tls, server_name, error);
    }
    bool tcp_connected() const override { return inner_.tcp_connected(); }
    Status start_tls(const char* server_name, TransportError* error) override {
        return inner_.start_tls(server_name, error);
    }
    CertificateProblem certificate_problem() const override { return inner_.certificate_problem(); }
    IoResult establish() override { return inner_.establish(); }
    IoResult read(std::uint8_t* out, std::size_t size) override;
    IoResult write(const std::uint8_t* data, std::size_t size) override {
        return inner_.write(data, size);
    }
    IoResult writev(const IoSlice* slices, std::size_t count) override {
        return inner_.writev(slices, count);
    }
    std::size_t pending() const override { return inner_.pending(); }
    PollInterest interest(bool want_read, bool want_write) const override {
        return inner_.interest(want_read, want_write);
    }
    int fd() const override { return inner_.fd(); }
    void close() override { inner_.close(); }

  private:
    port::PosixTransport& inner_;
    bool log_reads_;
};

/// Logs state changes; accounts the CPU spent inside TLS handshakes.
class LinkLog final : public ClientListener {
  public:
    explicit LinkLog(const port::PosixTransport& transport) : transport_(transport) {}
    void attach(const Client* client) { client_ = client; }

    void on_state(const ClientEvent& event) override;

    std::uint32_t tls_handshakes() const { return tls_handshakes_; }
    std::uint32_t tls_resumed() const { return tls_resumed_; }
    double tls_cpu_s() const { return tls_cpu_s_; }
    double tls_wall_s() const { return tls_wall_s_; }
    void reset_tls_totals();

  private:
    const port::PosixTransport& transport_;
    const Client* client_ = nullptr;
    std::uint64_t resumed_seen_ = 0;  // welcomes that resumed, as of the last line
    bool in_tls_ = false;
    double tls_started_cpu_s_ = 0;
    std::uint64_t tls_started_us_ = 0;
    std::uint32_t tls_handshakes_ = 0;
    std::uint32_t tls_resumed_ = 0;
    double tls_cpu_s_ = 0;
    double tls_wall_s_ = 0;
};

}  // namespace tether::bench

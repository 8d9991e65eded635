// SPDX-License-Identifier: MIT
// The real transports: non-blocking TCP (IPv4 and IPv6), and mbedTLS over it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ip_address.h"
#include "tether/port/entropy.h"
#include "tether/status.h"
#include "tether/transport.h"

namespace tether::port {

struct TlsSettings {
    /// PEM file of trusted CAs; null for the system bundle
    /// (/etc/ssl/certs/ca-certificates.crt).
    const char* ca_file = nullptr;
    /// PEM client certificate and key for mutual TLS; both or neither.
    const char* client_cert_file = nullptr;
    const char* client_key_file = nullptr;
    /// SHA-256 of the server certificate's SubjectPublicKeyInfo (DER); checked
    /// in addition to the chain when has_pin.
    bool has_pin = false;
    std::uint8_t pin_sha256[32] = {};
    /// No verification of chain, name or pin. Only behind an explicit option;
    /// the client logs a warning on every connect while it is set.
    bool insecure = false;
    /// Offer the last session on reconnect, so a reconnect costs a resumed
    /// handshake instead of a full one.
    bool session_resumption = true;
};

/// TLS configuration shared by every connection of one client: the parsed
/// CA chain, client certificate and key, and the session kept for resumption.
/// Allocates once, in init(); nothing per connection.
class TlsContext {
  public:
    TlsContext();
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    /// Loads files and builds the mbedTLS configuration. kOk; kNotFound when
    /// a file cannot be read; kCorrupt when a PEM does not parse or key and
    /// certificate do not match; kInvalidArgument when only one of client
    /// certificate and key is given; kUnavailable when `entropy` is not ready.
    /// error_text() says which and why. `entropy` must outlive the context.
    /// Calling init() again is allowed while no transport is open with it.
    Status init(const TlsSettings& settings, Entropy& entropy);
    const char* error_text() const { return error_text_; }
    const TlsSettings& settings() const { return settings_; }
    bool insecure() const { return settings_.insecure; }

  private:
    friend class PosixTransport;
    struct State;
    State* state_ = nullptr;
    TlsSettings settings_;
    char error_text_[160] = {};
};

/// A transport over one socket at a time; reusable across reconnects
/// (open, ..., close, open, ...).
///
/// TLS writes: mbedTLS has no gather write and requires a write that would
/// block to be repeated with the same bytes, because it has already encrypted
/// them. write()/writev() therefore copy up to 4 KiB at a time into one
/// record; bytes of a record that could not be sent completely are not
/// counted as moved, and the next write()/writev() must begin with them again
/// (as any caller that keeps its unsent bytes does). A call that begins with
/// other bytes fails with kError/kOther instead of corrupting the stream.
///
/// Server names that are IP literals are matched against the certificate's
/// iPAddress subjectAltNames (mbedTLS 2.28 alone would compare them as text
/// and never match) and are not sent as SNI.
class PosixTransport final : public Connection {
  public:
    /// `tls` is the context Connection::open() uses for wss:// (may be null:
    /// then a TLS open fails with kInvalidArgument); it must outlive the transport.
    explicit PosixTransport(TlsContext* tls = nullptr);
    ~PosixTransport() override;
    PosixTransport(const PosixTransport&) = delete;
    PosixTransport& operator=(const PosixTransport&) = delete;

    /// Starts a non-blocking connect to address:port. With `tls`, establish()
    /// then runs the TLS handshake with SNI and hostname verification against
    /// `server_name` (which must stay valid until close()). Returns kOk
    /// (connect under way: poll for write, then call establish()), or
    /// kIoError with *error set (refused at once, unreachable, ...);
    /// kInvalidArgument (*error kOther) for an unknown address family, a TLS
    /// context whose init() failed, or a missing server name with TLS. An open
    /// transport is closed first. A TLS session saved by the context for the
    /// same server name is offered for resumption.
    Status open(const net::IpAddress& address, std::uint16_t port, TlsContext* tls,
                const char* server_name, TransportError* error);

    /// Connection: the same, with the context given at construction when `tls`.
    Status open(const net::IpAddress& address, std::uint16_t port, bool tls,
                const char* server_name, TransportError* error) override;

    /// Connection: TLS with the context given at construction over the
    /// established plain connection (the proxy tunnel).
    Status start_tls(const char* server_name, TransportError* error) override;

    IoResult establish() override;
    IoResult read(std::uint8_t* out, std::size_t size) override;
    IoResult write(const std::uint8_t* data, std::size_t size) override;
    IoResult writev(const IoSlice* slices, std::size_t count) override;
    std::size_t pending() const override;
    PollInterest interest(bool want_read, bool want_write) const override;
    int fd() const override { return fd_; }
    void close() override;

    /// After establish() returned kOk on a TLS connection: whether the server
    /// accepted the offered session (an abbreviated handshake). Detected by
    /// the negotiated master secret being the offered session's.
    bool session_resumed() const { return session_resumed_; }
    /// True once the TCP connection is up (the TLS handshake may still be running).
    bool tcp_connected() const override {
        return phase_ == Phase::kHandshaking || phase_ == Phase::kEstablished;
    }
    /// The verification failure, when establish() failed with kCertificateInvalid.
    const char* verify_error() const { return verify_error_; }
    /// Its category (mbedTLS's verify flags, or the pin check).
    CertificateProblem certificate_problem() const override { return certificate_problem_; }

  private:
    friend struct TlsCallbacks;
    enum class Phase : std::uint8_t { kIdle, kConnecting, kHandshaking, kEstablished, kFailed };
    struct TlsState;
    IoResult fail(TransportError why);
    IoResult not_established() const;
    void end_tls();
    void destroy_tls_state();
    IoResult finish_connect();
    Status start_tls(TlsContext* tls, const char* server_name, TransportError* error);
    IoResult handshake();
    IoResult tls_read(std::uint8_t* out, std::size_t size);
    IoResult tls_send(const IoSlice* slices, std::size_t count);
    IoResult tls_error(int mbedtls_result);

    int fd_ = -1;
    Phase phase_ = Phase::kIdle;
    TransportError failure_ = TransportError::kNone;
    TlsContext* default_tls_ = nullptr;
    TlsContext* tls_ = nullptr;
    TlsState* tls_state_ = nullptr;  // allocated on the first TLS open, reused after
    bool session_resumed_ = false;
    char verify_error_[128] = {};
    CertificateProblem certificate_problem_ = CertificateProblem::kNone;
    // What the last TLS call of each kind waits for, beyond its own direction:
    // the handshake in either direction, a read that must write (and the
    // reverse) while the record layer is busy.
    bool handshake_wants_read_ = false;
    bool handshake_wants_write_ = false;
    bool read_wants_write_ = false;
    bool write_wants_read_ = false;
};

}  // namespace tether::port

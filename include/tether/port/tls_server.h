// SPDX-License-Identifier: MIT
// The server side of the transports: an accepted socket, plain or with an
// mbedTLS 2.28 server handshake, behind the same Transport contract the
// client's WebSocket layer uses.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/port/entropy.h"
#include "tether/status.h"
#include "tether/transport.h"

namespace tether::port {

struct TlsServerSettings {
    /// PEM certificate chain (leaf first) and its private key. Required.
    const char* cert_file = nullptr;
    const char* key_file = nullptr;
    /// PEM CAs client certificates must chain to (mutual TLS); null: no
    /// client certificate is requested.
    const char* client_ca_file = nullptr;
    /// Issue session tickets (RFC 5077) so clients resume with an
    /// abbreviated handshake; the ticket key lives in memory only.
    bool session_tickets = true;
    /// Ticket lifetime in seconds.
    std::uint32_t ticket_lifetime_s = 86400;
};

/// The TLS configuration of one listener: certificate, key, client CAs,
/// ticket keys. Allocates once, in init().
class TlsServerContext {
  public:
    TlsServerContext();
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    /// Loads the files and builds the mbedTLS server configuration (TLS 1.2).
    /// kOk; kInvalidArgument when the certificate or key is missing;
    /// kNotFound when a file cannot be read; kCorrupt when a PEM does not
    /// parse or key and certificate do not match; kUnavailable when `entropy`
    /// is not ready. error_text() says which. `entropy` must outlive the
    /// context; init() may be called once.
    Status init(const TlsServerSettings& settings, Entropy& entropy);
    const char* error_text() const { return error_text_; }

  private:
    friend class AcceptedTransport;
    struct State;
    State* state_ = nullptr;
    char error_text_[160] = {};
};

/// One accepted connection. With a TlsServerContext, establish() runs the
/// server handshake; without, establish() answers kOk at once.
///
/// TLS writes follow PosixTransport's rule: bytes of a record not fully sent
/// are not counted as moved and the next write()/writev() must begin with
/// them again (WsStream::flush() does); other bytes fail with kError/kOther.
class AcceptedTransport final : public Transport {
  public:
    /// `tls` may be null (plain TCP); it must outlive the transport.
    explicit AcceptedTransport(TlsServerContext* tls = nullptr);
    ~AcceptedTransport() override;
    AcceptedTransport(const AcceptedTransport&) = delete;
    AcceptedTransport& operator=(const AcceptedTransport&) = delete;

    /// Takes ownership of `fd`, an accepted socket, and makes it
    /// non-blocking with TCP_NODELAY. kOk; kInvalidArgument for fd < 0 or a
    /// TLS context whose init() failed (the fd is closed); kUnavailable when
    /// the TLS state cannot be allocated (the fd is closed).
    Status adopt(int fd);

    IoResult establish() override;
    IoResult read(std::uint8_t* out, std::size_t size) override;
    IoResult write(const std::uint8_t* data, std::size_t size) override;
    IoResult writev(const IoSlice* slices, std::size_t count) override;
    std::size_t pending() const override;
    PollInterest interest(bool want_read, bool want_write) const override;
    int fd() const override { return fd_; }
    /// Sends a TLS close_notify (one attempt) and closes the socket.
    void close() override;
    /// Closes with SO_LINGER 0: the peer sees a TCP reset.
    void reset();

    bool tls() const { return tls_ != nullptr; }

  private:
    struct TlsState;
    IoResult fail(TransportError why);
    IoResult tls_error();
    IoResult tls_send(const IoSlice* slices, std::size_t count);

    TlsServerContext* tls_;
    TlsState* tls_state_ = nullptr;
    int fd_ = -1;
    bool established_ = false;
    bool failed_ = false;
    TransportError failure_ = TransportError::kNone;
    bool handshake_wants_read_ = true;
    bool handshake_wants_write_ = false;
    bool read_wants_write_ = false;
    bool write_wants_read_ = false;
};

}  // namespace tether::port

// SPDX-License-Identifier: MIT
// The transport contract: a byte stream the WebSocket layer reads and writes
// without knowing whether it is plain TCP or TLS, a real socket or a fake.
//
// Written once here; implemented by port/posix (TCP, and mbedTLS over TCP)
// and by a scripted fake in tests/. Every call returns at once: a transport
// never waits, it answers kWouldBlock and the poll loop comes back when the
// descriptor is ready (see interest()).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/ip_address.h"
#include "tether/status.h"

namespace tether {

enum class IoStatus : std::uint8_t {
    kOk,          ///< `bytes` were moved (> 0, except for a zero-sized request)
    kWouldBlock,  ///< nothing moved; wait for interest() and try again
    kClosed,      ///< the peer closed the stream in order (EOF, TLS close_notify)
    kError,       ///< the stream is broken (reset, TLS alert, I/O error); `error` says how
};

/// Why a transport failed, mapped by the client onto the failure policy.
enum class TransportError : std::uint8_t {
    kNone,
    kRefused,             ///< connection refused
    kReset,               ///< reset by peer, broken pipe
    kTimedOut,            ///< the kernel gave up (ETIMEDOUT)
    kUnreachable,         ///< no route, network down, address not available
    kTlsFailed,           ///< handshake or record-layer failure other than verification
    kCertificateInvalid,  ///< verification, hostname or pin mismatch
    kOther,
};

/// Why a certificate did not verify (TransportError::kCertificateInvalid),
/// for the log and the status file; the failure policy sees only
/// kCertificateInvalid. When several apply, the first in this order is given.
enum class CertificateProblem : std::uint8_t {
    kNone,
    kUnknownCa,     ///< no trusted CA signed the chain (or a signature is bad)
    kExpired,       ///< a certificate's notAfter has passed
    kNotYetValid,   ///< a certificate's notBefore lies ahead (or the clock is behind)
    kRevoked,       ///< listed in a CRL
    kNameMismatch,  ///< the leaf does not name the host (or IP address) connected to
    kPinMismatch,   ///< the server's public key is not the configured pin
    kOther,         ///< anything else the verifier refused (key usage, weak hash, ...)
};

const char* to_string(IoStatus status);
const char* to_string(TransportError error);
/// "unknown_ca", "expired", "not_yet_valid", "revoked", "name_mismatch",
/// "pin_mismatch", "other", "none".
const char* to_string(CertificateProblem problem);

/// A status with a size, for partial I/O.
struct IoResult {
    IoStatus status;
    std::size_t bytes = 0;
    TransportError error = TransportError::kNone;

    static IoResult ok(std::size_t n) { return IoResult{IoStatus::kOk, n}; }
    static IoResult would_block() { return IoResult{IoStatus::kWouldBlock, 0}; }
    static IoResult closed() { return IoResult{IoStatus::kClosed, 0}; }
    static IoResult failed(TransportError why) { return IoResult{IoStatus::kError, 0, why}; }
};

/// What the transport waits for before its next call can make progress.
struct PollInterest {
    bool read = false;
    bool write = false;
};

/// One piece of a gathered write.
struct IoSlice {
    const std::uint8_t* data;
    std::size_t size;
};

class Transport {
  public:
    virtual ~Transport() = default;

    /// Advances connection establishment (TCP connect completion, then the TLS
    /// handshake). kOk once established (bytes = 0), kWouldBlock while under
    /// way, kError with the reason when it failed. Calling it again after kOk
    /// returns kOk.
    virtual IoResult establish() = 0;

    /// Reads up to `size` bytes into `out`.
    virtual IoResult read(std::uint8_t* out, std::size_t size) = 0;

    /// Writes up to `size` bytes; may move fewer (kOk with bytes < size).
    virtual IoResult write(const std::uint8_t* data, std::size_t size) = 0;

    /// Gathered write of `count` slices, in order; may move fewer bytes than
    /// their total. One system call for many frames is the point.
    virtual IoResult writev(const IoSlice* slices, std::size_t count) = 0;

    /// Bytes already received and decrypted that read() returns without
    /// touching the socket. The loop must drain them before it blocks in
    /// poll(), which cannot see them.
    virtual std::size_t pending() const = 0;

    /// What to poll for: given whether the caller wants to read and/or write,
    /// the events the descriptor must signal (TLS may need to write in order
    /// to read, and the reverse).
    virtual PollInterest interest(bool want_read, bool want_write) const = 0;

    /// The descriptor to poll, or -1 when there is none.
    virtual int fd() const = 0;

    /// Releases the descriptor and any TLS state at once (no waiting for
    /// close_notify to be acknowledged). Idempotent.
    virtual void close() = 0;
};

/// A transport the client can point at an address, reused across reconnects:
/// open, establish, read/write, close, open again.
class Connection : public Transport {
  public:
    /// Starts a non-blocking connect to address:port; with `tls`, establish()
    /// goes on to a TLS handshake with SNI and certificate verification against
    /// `server_name` (which must stay valid until close()). Returns kOk (under
    /// way: poll for write, then call establish()) or kIoError with *error set
    /// when it failed at once.
    virtual Status open(const net::IpAddress& address, std::uint16_t port, bool tls,
                        const char* server_name, TransportError* error) = 0;

    /// True once the TCP connection is up (the TLS handshake may still be running).
    virtual bool tcp_connected() const = 0;

    /// Begins TLS over a connection opened without it, once establish() has
    /// returned kOk and the bytes before the handshake have been exchanged
    /// (the CONNECT of an HTTP proxy tunnel): SNI and certificate
    /// verification use `server_name` (the origin's, never the proxy's; it
    /// must stay valid until close()), and establish() then runs the
    /// handshake like after a TLS open(). Returns kOk, or kInvalidArgument
    /// with *error set when the connection is not established, already runs
    /// TLS, has no TLS configuration, or the name is empty or too long.
    virtual Status start_tls(const char* server_name, TransportError* error) = 0;

    /// After establish() failed with kCertificateInvalid: why. kNone otherwise
    /// (and for transports that do not verify certificates).
    virtual CertificateProblem certificate_problem() const { return CertificateProblem::kNone; }
};

/// Randomness for the client: backoff jitter, Sec-WebSocket-Key. Implemented
/// by the port's DRBG (port::Entropy) and by fixed fakes in tests.
class RandomSource {
  public:
    virtual ~RandomSource() = default;
    /// Fills `size` bytes; false when entropy is unavailable (fail closed).
    virtual bool fill_random(std::uint8_t* out, std::size_t size) = 0;
};

}  // namespace tether

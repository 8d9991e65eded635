// SPDX-License-Identifier: MIT
// The TLS half of PosixTransport: mbedTLS over the non-blocking socket that
// posix_transport.cpp connects.
#include <mbedtls/net_sockets.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "socket_errors.h"
#include "tls_state.h"

namespace tether::port {

// mbedTLS callbacks; a friend so they can reach the private TlsState.
struct TlsCallbacks {
    // mbedTLS 2.28 matches the server name as text against the CN and every
    // subjectAltName, so an IP literal never matches an iPAddress entry
    // (4 or 16 raw bytes). For an IP literal no hostname is given to mbedTLS
    // and the leaf's iPAddress entries are compared here instead (RFC 6125:
    // an IP is only ever matched against iPAddress, never the CN).
    static int verify(void* context, mbedtls_x509_crt* certificate, int depth,
                      std::uint32_t* flags) {
        const PosixTransport::TlsState* state =
            static_cast<const PosixTransport::TlsState*>(context);
        if (depth != 0 || !state->name_is_ip) {
            return 0;
        }
        const std::size_t size = state->expected_ip.family == net::kIpv4 ? 4 : 16;
        constexpr int kIpAddressTag = MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7;
        for (const mbedtls_x509_sequence* name = &certificate->subject_alt_names; name != nullptr;
             name = name->next) {
            if (name->buf.tag == kIpAddressTag && name->buf.len == size &&
                std::memcmp(name->buf.p, state->expected_ip.bytes, size) == 0) {
                return 0;
            }
        }
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
        return 0;
    }
};

namespace {

bool is_want(int result) {
    return result == MBEDTLS_ERR_SSL_WANT_READ || result == MBEDTLS_ERR_SSL_WANT_WRITE;
}

// Reads a list of slices front to back, skipping empty ones.
class GatherCursor {
  public:
    GatherCursor(const IoSlice* slices, std::size_t count) : slices_(slices), count_(count) {}

    // Copies up to `max` bytes into `out`; returns how many.
    std::size_t copy(unsigned char* out, std::size_t max) {
        std::size_t copied = 0;
        while (copied < max && index_ < count_) {
            const std::size_t left = slices_[index_].size - offset_;
            const std::size_t chunk = left < max - copied ? left : max - copied;
            if (chunk > 0) {
                std::memcpy(out + copied, slices_[index_].data + offset_, chunk);
            }
            copied += chunk;
            advance(chunk);
        }
        return copied;
    }

    // True when the next `size` bytes equal `expected`; consumes them.
    bool consume_matching(const unsigned char* expected, std::size_t size) {
        std::size_t matched = 0;
        while (matched < size && index_ < count_) {
            const std::size_t left = slices_[index_].size - offset_;
            const std::size_t chunk = left < size - matched ? left : size - matched;
            if (chunk > 0 &&
                std::memcmp(expected + matched, slices_[index_].data + offset_, chunk) != 0) {
                return false;
            }
            matched += chunk;
            advance(chunk);
        }
        return matched == size;
    }

  private:
    void advance(std::size_t size) {
        offset_ += size;
        if (offset_ == slices_[index_].size) {
            ++index_;
            offset_ = 0;
        }
    }

    const IoSlice* slices_;
    std::size_t count_;
    std::size_t index_ = 0;
    std::size_t offset_ = 0;
};

// mbedTLS's verification flags as one line ("a; b").
void describe_flags(std::uint32_t flags, char* out, std::size_t capacity) {
    char text[512];
    const int length = mbedtls_x509_crt_verify_info(text, sizeof text, "", flags);
    std::size_t used = 0;
    for (int i = 0; i < length && used + 3 < capacity; ++i) {
        if (text[i] != '\n') {
            out[used++] = text[i];
        } else if (i + 1 < length) {
            out[used++] = ';';
            out[used++] = ' ';
        }
    }
    out[used] = '\0';
}

// The first problem, in CertificateProblem's order, among mbedTLS's flags.
CertificateProblem problem_of(std::uint32_t flags) {
    if ((flags & (MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_MISSING)) != 0) {
        return CertificateProblem::kUnknownCa;
    }
    if ((flags & MBEDTLS_X509_BADCERT_EXPIRED) != 0) {
        return CertificateProblem::kExpired;
    }
    if ((flags & MBEDTLS_X509_BADCERT_FUTURE) != 0) {
        return CertificateProblem::kNotYetValid;
    }
    if ((flags & MBEDTLS_X509_BADCERT_REVOKED) != 0) {
        return CertificateProblem::kRevoked;
    }
    if ((flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0) {
        return CertificateProblem::kNameMismatch;
    }
    return CertificateProblem::kOther;
}

}  // namespace

Status PosixTransport::start_tls(TlsContext* tls, const char* server_name, TransportError* error) {
    const std::size_t name_length = server_name == nullptr ? 0 : std::strlen(server_name);
    if (tls->state_ == nullptr || !tls->state_->ready || name_length == 0 ||
        name_length >= kServerNameCapacity) {
        *error = TransportError::kOther;
        return Status::kInvalidArgument;
    }
    if (tls_state_ == nullptr) {
        tls_state_ = new (std::nothrow) TlsState;
        if (tls_state_ == nullptr) {
            *error = TransportError::kOther;
            return Status::kUnavailable;
        }
        mbedtls_ssl_init(&tls_state_->ssl);
    }
    TlsState& state = *tls_state_;
    const mbedtls_ssl_config* config = &tls->state_->config;
    if (state.bound_config != config) {
        // Another TlsContext than last time: the record buffers are sized
        // and bound per configuration, so set up afresh.
        if (state.bound_config != nullptr) {
            mbedtls_ssl_free(&state.ssl);
            mbedtls_ssl_init(&state.ssl);
            state.bound_config = nullptr;
        }
        if (mbedtls_ssl_setup(&state.ssl, config) != 0) {
            *error = TransportError::kTlsFailed;
            return Status::kIoError;
        }
        state.bound_config = config;
    }
    std::memcpy(state.server_name, server_name, name_length + 1);
    state.name_is_ip = net::parse_ip_address(server_name, name_length, &state.expected_ip);
    // SNI carries host names only (RFC 6066), and an IP literal is checked
    // by TlsCallbacks::verify, so mbedTLS gets no name for one.
    if (mbedtls_ssl_set_hostname(&state.ssl, state.name_is_ip ? nullptr : server_name) != 0) {
        *error = TransportError::kTlsFailed;
        return Status::kIoError;
    }
    mbedtls_ssl_set_bio(&state.ssl, &state.bio, SocketBio::send, SocketBio::recv, nullptr);
    mbedtls_ssl_set_verify(&state.ssl, TlsCallbacks::verify, &state);
    state.bio.fd = fd_;
    state.bio.io_error = TransportError::kNone;
    state.staged = 0;
    state.offered_session = false;
    TlsContext::State& shared = *tls->state_;
    if (tls->settings_.session_resumption && shared.has_saved &&
        std::strcmp(shared.saved_name, server_name) == 0) {
        state.offered_session = mbedtls_ssl_set_session(&state.ssl, &shared.saved) == 0;
    }
    tls_ = tls;
    session_resumed_ = false;
    verify_error_[0] = '\0';
    certificate_problem_ = CertificateProblem::kNone;
    handshake_wants_read_ = false;
    handshake_wants_write_ = true;
    return Status::kOk;
}

IoResult PosixTransport::handshake() {
    TlsState& state = *tls_state_;
    TlsContext::State& shared = *tls_->state_;
    const int result = mbedtls_ssl_handshake(&state.ssl);
    handshake_wants_read_ = result == MBEDTLS_ERR_SSL_WANT_READ;
    handshake_wants_write_ = result == MBEDTLS_ERR_SSL_WANT_WRITE;
    if (is_want(result)) {
        return IoResult::would_block();
    }
    if (result != 0) {
        // A session that led to a failure is not offered again.
        shared.has_saved = shared.has_saved && !state.offered_session;
        const std::uint32_t flags = mbedtls_ssl_get_verify_result(&state.ssl);
        if (result == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
            (!tls_->insecure() && flags != 0 && flags != UINT32_MAX)) {
            describe_flags(flags, verify_error_, sizeof verify_error_);
            certificate_problem_ = problem_of(flags);
            return fail(TransportError::kCertificateInvalid);
        }
        return tls_error(result);
    }

    const TlsSettings& settings = tls_->settings_;
    if (settings.has_pin && !settings.insecure) {
        // Checked after the handshake rather than in the verify callback so
        // that a resumed session (no Certificate message) is checked too:
        // mbedTLS keeps the peer certificate in the session.
        const mbedtls_x509_crt* peer = mbedtls_ssl_get_peer_cert(&state.ssl);
        unsigned char digest[32];
        if (peer == nullptr ||
            mbedtls_sha256_ret(peer->pk_raw.p, peer->pk_raw.len, digest, 0) != 0 ||
            std::memcmp(digest, settings.pin_sha256, sizeof digest) != 0) {
            shared.has_saved = false;
            std::strncpy(verify_error_, "server public key does not match the pin",
                         sizeof verify_error_ - 1);
            certificate_problem_ = CertificateProblem::kPinMismatch;
            return fail(TransportError::kCertificateInvalid);
        }
    }

    if (settings.session_resumption) {
        // mbedTLS 2.28 has no public "was this resumed" query. A resumed
        // handshake reuses the offered session's master secret, a full one
        // derives a fresh random one, so equal secrets mean resumption.
        mbedtls_ssl_session_free(&shared.fresh);
        mbedtls_ssl_session_init(&shared.fresh);
        if (mbedtls_ssl_get_session(&state.ssl, &shared.fresh) == 0) {
            session_resumed_ =
                state.offered_session && std::memcmp(shared.fresh.master, shared.saved.master,
                                                     sizeof shared.fresh.master) == 0;
            const mbedtls_ssl_session previous = shared.saved;
            shared.saved = shared.fresh;
            shared.fresh = previous;
            shared.has_saved = true;
            std::memcpy(shared.saved_name, state.server_name, sizeof shared.saved_name);
        }
    }
    phase_ = Phase::kEstablished;
    return IoResult::ok(0);
}

IoResult PosixTransport::tls_error(int mbedtls_result) {
    (void)mbedtls_result;
    const TransportError socket_error = tls_state_->bio.io_error;
    return fail(socket_error != TransportError::kNone ? socket_error : TransportError::kTlsFailed);
}

IoResult PosixTransport::tls_read(std::uint8_t* out, std::size_t size) {
    const int result = mbedtls_ssl_read(&tls_state_->ssl, out, size);
    read_wants_write_ = result == MBEDTLS_ERR_SSL_WANT_WRITE;
    if (result > 0) {
        return IoResult::ok(static_cast<std::size_t>(result));
    }
    if (is_want(result)) {
        return IoResult::would_block();
    }
    if (result == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        return IoResult::closed();
    }
    if (result == 0) {
        // EOF without close_notify: the stream may have been cut short.
        return fail(TransportError::kReset);
    }
    return tls_error(result);
}

// Plaintext goes out one record at a time through the stage (see
// kStageSize). A record mbedTLS could not fully send stays staged and is not
// counted as moved; the caller's next write must begin with those same bytes,
// which are compared and then sent by repeating the identical call, as
// mbedTLS requires.
IoResult PosixTransport::tls_send(const IoSlice* slices, std::size_t count) {
    TlsState& state = *tls_state_;
    GatherCursor cursor(slices, count);
    if (state.staged > 0 && !cursor.consume_matching(state.stage, state.staged)) {
        return fail(TransportError::kOther);
    }
    const int payload = mbedtls_ssl_get_max_out_record_payload(&state.ssl);
    const std::size_t limit = payload > 0 && static_cast<std::size_t>(payload) < kStageSize
                                  ? static_cast<std::size_t>(payload)
                                  : kStageSize;
    std::size_t moved = 0;
    for (;;) {
        if (state.staged == 0) {
            state.staged = cursor.copy(state.stage, limit);
            if (state.staged == 0) {
                break;
            }
        }
        const int result = mbedtls_ssl_write(&state.ssl, state.stage, state.staged);
        write_wants_read_ = result == MBEDTLS_ERR_SSL_WANT_READ;
        if (is_want(result)) {
            break;
        }
        if (result < 0) {
            return tls_error(result);
        }
        const std::size_t written = static_cast<std::size_t>(result);
        std::memmove(state.stage, state.stage + written, state.staged - written);
        state.staged -= written;
        moved += written;
    }
    if (moved == 0 && state.staged > 0) {
        return IoResult::would_block();
    }
    return IoResult::ok(moved);
}

std::size_t PosixTransport::pending() const {
    if (tls_ == nullptr || phase_ != Phase::kEstablished) {
        return 0;
    }
    return mbedtls_ssl_get_bytes_avail(&tls_state_->ssl);
}

void PosixTransport::end_tls() {
    if (tls_ == nullptr) {
        return;
    }
    TlsState& state = *tls_state_;
    if (phase_ == Phase::kEstablished) {
        // One attempt, no waiting: close() never blocks.
        (void)mbedtls_ssl_close_notify(&state.ssl);
    }
    // Wipes keys and record state but keeps the buffers for the next open.
    (void)mbedtls_ssl_session_reset(&state.ssl);
    mbedtls_platform_zeroize(state.stage, sizeof state.stage);
    state.staged = 0;
    state.bio.fd = -1;
}

void PosixTransport::destroy_tls_state() {
    if (tls_state_ != nullptr) {
        mbedtls_ssl_free(&tls_state_->ssl);
        delete tls_state_;
        tls_state_ = nullptr;
    }
}

}  // namespace tether::port

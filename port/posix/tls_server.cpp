// SPDX-License-Identifier: MIT
// Accepted connections, plain and TLS (mbedTLS 2.28 server side).
//
// The TLS state of a connection (ssl context plus a one-record write stage)
// is allocated on adopt() and freed with the transport. Session tickets are
// encrypted with a key held by the context (mbedtls_ssl_ticket), so a
// resumed handshake needs no per-session cache on the server.
#include "tether/port/tls_server.h"

#include "tls_bio.h"
#include "tls_files.h"

#include <fcntl.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "socket_errors.h"

namespace tether::port {
namespace {

constexpr std::size_t kStageSize = 4096;
constexpr std::size_t kMaxIovecs = 64;

bool is_want(int result) {
    return result == MBEDTLS_ERR_SSL_WANT_READ || result == MBEDTLS_ERR_SSL_WANT_WRITE;
}

IoResult io_failure(int error_number) {
    if (error_number == EAGAIN || error_number == EWOULDBLOCK) {
        return IoResult::would_block();
    }
    return IoResult::failed(transport_error_from_errno(error_number));
}

}  // namespace

struct TlsServerContext::State {
    mbedtls_ssl_config config;
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_x509_crt client_ca;
    mbedtls_ssl_ticket_context ticket;
    bool ready = false;
};

struct AcceptedTransport::TlsState {
    mbedtls_ssl_context ssl;
    SocketBio bio;
    std::size_t staged = 0;
    unsigned char stage[kStageSize];
};

TlsServerContext::TlsServerContext() = default;

TlsServerContext::~TlsServerContext() {
    if (state_ != nullptr) {
        mbedtls_ssl_ticket_free(&state_->ticket);
        mbedtls_x509_crt_free(&state_->client_ca);
        mbedtls_pk_free(&state_->key);
        mbedtls_x509_crt_free(&state_->chain);
        mbedtls_ssl_config_free(&state_->config);
        delete state_;
    }
}

Status TlsServerContext::init(const TlsServerSettings& settings, Entropy& entropy) {
    error_text_[0] = '\0';
    if (state_ != nullptr) {
        std::snprintf(error_text_, sizeof error_text_, "already initialised");
        return Status::kInvalidArgument;
    }
    if (settings.cert_file == nullptr || settings.key_file == nullptr) {
        std::snprintf(error_text_, sizeof error_text_, "certificate and key are required");
        return Status::kInvalidArgument;
    }
    if (!entropy.ready()) {
        std::snprintf(error_text_, sizeof error_text_, "entropy source not ready");
        return Status::kUnavailable;
    }
    state_ = new (std::nothrow) State;
    if (state_ == nullptr) {
        std::snprintf(error_text_, sizeof error_text_, "out of memory");
        return Status::kUnavailable;
    }
    State& s = *state_;
    mbedtls_ssl_config_init(&s.config);
    mbedtls_x509_crt_init(&s.chain);
    mbedtls_pk_init(&s.key);
    mbedtls_x509_crt_init(&s.client_ca);
    mbedtls_ssl_ticket_init(&s.ticket);

    auto failed = [this](const char* what, const char* path, int result) {
        char reason[96];
        mbedtls_strerror(result, reason, sizeof reason);
        std::snprintf(error_text_, sizeof error_text_, "%s %s: %s", what,
                      path != nullptr ? path : "", reason);
        return (result == MBEDTLS_ERR_X509_FILE_IO_ERROR || result == MBEDTLS_ERR_PK_FILE_IO_ERROR)
                   ? Status::kNotFound
                   : Status::kCorrupt;
    };
    // A file that could not be read: its path and errno's text.
    auto unreadable = [this](const char* what, const char* path, int os_error) {
        std::snprintf(error_text_, sizeof error_text_, "%s %s: %s", what, path,
                      std::strerror(os_error));
        return Status::kNotFound;
    };
    int os_error = 0;
    int result = parse_certificate_file(&s.chain, settings.cert_file, &os_error);
    if (os_error != 0) {
        return unreadable("certificate", settings.cert_file, os_error);
    }
    if (result != 0) {
        return failed("certificate", settings.cert_file,
                      result < 0 ? result : MBEDTLS_ERR_X509_INVALID_FORMAT);
    }
    result = parse_key_file(&s.key, settings.key_file, &os_error);
    if (os_error != 0) {
        return unreadable("key", settings.key_file, os_error);
    }
    if (result != 0) {
        return failed("key", settings.key_file, result);
    }
    result = mbedtls_pk_check_pair(&s.chain.pk, &s.key);
    if (result != 0) {
        return failed("key does not match", settings.cert_file, result);
    }
    if (settings.client_ca_file != nullptr) {
        result = parse_certificate_file(&s.client_ca, settings.client_ca_file, &os_error);
        if (os_error != 0) {
            return unreadable("client CA", settings.client_ca_file, os_error);
        }
        if (result < 0 || s.client_ca.version == 0) {
            return failed("client CA", settings.client_ca_file,
                          result < 0 ? result : MBEDTLS_ERR_X509_INVALID_FORMAT);
        }
    }
    mbedtls_ssl_config* config = &s.config;
    result = mbedtls_ssl_config_defaults(config, MBEDTLS_SSL_IS_SERVER,
                                         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (result != 0) {
        return failed("TLS configuration", nullptr, result);
    }
    // TLS 1.2, as the client: the TLS 1.3 code of mbedTLS 2.28 is experimental.
    mbedtls_ssl_conf_min_version(config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_rng(config, Entropy::rng_callback, entropy.rng_context());
    result = mbedtls_ssl_conf_own_cert(config, &s.chain, &s.key);
    if (result != 0) {
        return failed("certificate", settings.cert_file, result);
    }
    if (settings.client_ca_file != nullptr) {
        mbedtls_ssl_conf_ca_chain(config, &s.client_ca, nullptr);
        mbedtls_ssl_conf_authmode(config, MBEDTLS_SSL_VERIFY_REQUIRED);
    } else {
        mbedtls_ssl_conf_authmode(config, MBEDTLS_SSL_VERIFY_NONE);
    }
    if (settings.session_tickets) {
        result = mbedtls_ssl_ticket_setup(&s.ticket, Entropy::rng_callback, entropy.rng_context(),
                                          MBEDTLS_CIPHER_AES_256_GCM, settings.ticket_lifetime_s);
        if (result != 0) {
            return failed("session tickets", nullptr, result);
        }
        mbedtls_ssl_conf_session_tickets_cb(config, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse, &s.ticket);
    }
    s.ready = true;
    return Status::kOk;
}

AcceptedTransport::AcceptedTransport(TlsServerContext* tls) : tls_(tls) {}

AcceptedTransport::~AcceptedTransport() {
    close();
    if (tls_state_ != nullptr) {
        mbedtls_ssl_free(&tls_state_->ssl);
        delete tls_state_;
    }
}

Status AcceptedTransport::adopt(int fd) {
    close();
    if (fd < 0) {
        return Status::kInvalidArgument;
    }
    const int flags = ::fcntl(fd, F_GETFL, 0);
    (void)::fcntl(fd, F_SETFL, (flags < 0 ? 0 : flags) | O_NONBLOCK);
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_ = fd;
    failed_ = false;
    failure_ = TransportError::kNone;
    read_wants_write_ = false;
    write_wants_read_ = false;
    if (tls_ == nullptr) {
        established_ = true;
        return Status::kOk;
    }
    established_ = false;
    handshake_wants_read_ = true;
    handshake_wants_write_ = false;
    if (tls_->state_ == nullptr || !tls_->state_->ready) {
        close();
        return Status::kInvalidArgument;
    }
    if (tls_state_ == nullptr) {
        tls_state_ = new (std::nothrow) TlsState;
        if (tls_state_ == nullptr) {
            close();
            return Status::kUnavailable;
        }
        mbedtls_ssl_init(&tls_state_->ssl);
        if (mbedtls_ssl_setup(&tls_state_->ssl, &tls_->state_->config) != 0) {
            mbedtls_ssl_free(&tls_state_->ssl);
            delete tls_state_;
            tls_state_ = nullptr;
            close();
            return Status::kUnavailable;
        }
    }
    tls_state_->bio.fd = fd;
    tls_state_->bio.io_error = TransportError::kNone;
    tls_state_->staged = 0;
    mbedtls_ssl_set_bio(&tls_state_->ssl, &tls_state_->bio, SocketBio::send, SocketBio::recv,
                        nullptr);
    return Status::kOk;
}

IoResult AcceptedTransport::fail(TransportError why) {
    failed_ = true;
    failure_ = why;
    return IoResult::failed(why);
}

IoResult AcceptedTransport::tls_error() {
    const TransportError socket_error = tls_state_->bio.io_error;
    return fail(socket_error != TransportError::kNone ? socket_error : TransportError::kTlsFailed);
}

IoResult AcceptedTransport::establish() {
    if (fd_ < 0) {
        return IoResult::failed(TransportError::kOther);
    }
    if (failed_) {
        return IoResult::failed(failure_);
    }
    if (established_) {
        return IoResult::ok(0);
    }
    const int result = mbedtls_ssl_handshake(&tls_state_->ssl);
    handshake_wants_read_ = result == MBEDTLS_ERR_SSL_WANT_READ;
    handshake_wants_write_ = result == MBEDTLS_ERR_SSL_WANT_WRITE;
    if (is_want(result)) {
        return IoResult::would_block();
    }
    if (result != 0) {
        const std::uint32_t flags = mbedtls_ssl_get_verify_result(&tls_state_->ssl);
        if (result == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED || (flags != 0 && flags != UINT32_MAX)) {
            return fail(TransportError::kCertificateInvalid);
        }
        return tls_error();
    }
    established_ = true;
    return IoResult::ok(0);
}

IoResult AcceptedTransport::read(std::uint8_t* out, std::size_t size) {
    if (fd_ < 0 || !established_) {
        return IoResult::failed(TransportError::kOther);
    }
    if (failed_) {
        return IoResult::failed(failure_);
    }
    if (tls_ == nullptr) {
        for (;;) {
            const ssize_t got = ::recv(fd_, out, size, 0);
            if (got > 0) {
                return IoResult::ok(static_cast<std::size_t>(got));
            }
            if (got == 0) {
                return size == 0 ? IoResult::ok(0) : IoResult::closed();
            }
            if (errno != EINTR) {
                const IoResult failure = io_failure(errno);
                return failure.status == IoStatus::kError ? fail(failure.error) : failure;
            }
        }
    }
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
        return fail(TransportError::kReset);
    }
    return tls_error();
}

IoResult AcceptedTransport::write(const std::uint8_t* data, std::size_t size) {
    const IoSlice slice{data, size};
    return writev(&slice, 1);
}

IoResult AcceptedTransport::writev(const IoSlice* slices, std::size_t count) {
    if (fd_ < 0 || !established_) {
        return IoResult::failed(TransportError::kOther);
    }
    if (failed_) {
        return IoResult::failed(failure_);
    }
    if (tls_ != nullptr) {
        return tls_send(slices, count);
    }
    iovec vectors[kMaxIovecs];
    std::size_t used = 0;
    for (std::size_t i = 0; i < count && used < kMaxIovecs; ++i) {
        if (slices[i].size != 0) {
            vectors[used].iov_base = const_cast<std::uint8_t*>(slices[i].data);
            vectors[used].iov_len = slices[i].size;
            ++used;
        }
    }
    if (used == 0) {
        return IoResult::ok(0);
    }
    msghdr message{};
    message.msg_iov = vectors;
    message.msg_iovlen = used;
    for (;;) {
        const ssize_t sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
        if (sent >= 0) {
            return IoResult::ok(static_cast<std::size_t>(sent));
        }
        if (errno != EINTR) {
            const IoResult failure = io_failure(errno);
            return failure.status == IoStatus::kError ? fail(failure.error) : failure;
        }
    }
}

// One record at a time through the stage; see the class comment.
IoResult AcceptedTransport::tls_send(const IoSlice* slices, std::size_t count) {
    TlsState& state = *tls_state_;
    std::size_t index = 0;
    std::size_t offset = 0;
    auto copy = [&](unsigned char* out, std::size_t max, bool compare) {
        std::size_t done = 0;
        while (done < max && index < count) {
            const std::size_t left = slices[index].size - offset;
            const std::size_t chunk = left < max - done ? left : max - done;
            if (chunk != 0) {
                if (compare) {
                    if (std::memcmp(out + done, slices[index].data + offset, chunk) != 0) {
                        return static_cast<std::size_t>(-1);
                    }
                } else {
                    std::memcpy(out + done, slices[index].data + offset, chunk);
                }
            }
            done += chunk;
            offset += chunk;
            if (offset == slices[index].size) {
                ++index;
                offset = 0;
            }
        }
        return done;
    };
    if (state.staged > 0 && copy(state.stage, state.staged, true) != state.staged) {
        return fail(TransportError::kOther);
    }
    const int payload = mbedtls_ssl_get_max_out_record_payload(&state.ssl);
    const std::size_t limit = payload > 0 && static_cast<std::size_t>(payload) < kStageSize
                                  ? static_cast<std::size_t>(payload)
                                  : kStageSize;
    std::size_t moved = 0;
    for (;;) {
        if (state.staged == 0) {
            state.staged = copy(state.stage, limit, false);
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
            return tls_error();
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

std::size_t AcceptedTransport::pending() const {
    if (tls_ == nullptr || !established_ || tls_state_ == nullptr || fd_ < 0) {
        return 0;
    }
    return mbedtls_ssl_get_bytes_avail(&tls_state_->ssl);
}

PollInterest AcceptedTransport::interest(bool want_read, bool want_write) const {
    PollInterest interest;
    if (tls_ != nullptr && !established_) {
        interest.read = handshake_wants_read_;
        interest.write = handshake_wants_write_;
        return interest;
    }
    interest.read = want_read || (tls_ != nullptr && write_wants_read_);
    interest.write = want_write || (tls_ != nullptr && read_wants_write_);
    return interest;
}

void AcceptedTransport::close() {
    if (fd_ < 0) {
        return;
    }
    if (tls_state_ != nullptr) {
        if (established_ && !failed_) {
            (void)mbedtls_ssl_close_notify(&tls_state_->ssl);  // one attempt, no waiting
        }
        (void)mbedtls_ssl_session_reset(&tls_state_->ssl);
        mbedtls_platform_zeroize(tls_state_->stage, sizeof tls_state_->stage);
        tls_state_->staged = 0;
        tls_state_->bio.fd = -1;
    }
    ::close(fd_);
    fd_ = -1;
    established_ = false;
}

void AcceptedTransport::reset() {
    if (fd_ < 0) {
        return;
    }
    linger option{};
    option.l_onoff = 1;
    option.l_linger = 0;
    (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof option);
    if (tls_state_ != nullptr) {
        (void)mbedtls_ssl_session_reset(&tls_state_->ssl);
        tls_state_->staged = 0;
        tls_state_->bio.fd = -1;
    }
    ::close(fd_);
    fd_ = -1;
    established_ = false;
}

}  // namespace tether::port

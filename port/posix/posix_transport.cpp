// SPDX-License-Identifier: MIT
#include "tether/port/posix_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "socket_errors.h"

namespace tether::port {
namespace {

// Slices handed to one sendmsg; a longer gather list is a partial write.
constexpr std::size_t kMaxIovecs = 64;

// Builds the socket address for address:port; returns its length, or 0 for
// an unknown family.
socklen_t make_sockaddr(const net::IpAddress& address, std::uint16_t port,
                        sockaddr_storage* storage) {
    std::memset(storage, 0, sizeof *storage);
    if (address.family == net::kIpv4) {
        sockaddr_in* in4 = reinterpret_cast<sockaddr_in*>(storage);
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        std::memcpy(&in4->sin_addr, address.bytes, 4);
        return sizeof *in4;
    }
    if (address.family == net::kIpv6) {
        sockaddr_in6* in6 = reinterpret_cast<sockaddr_in6*>(storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        std::memcpy(&in6->sin6_addr, address.bytes, 16);
        return sizeof *in6;
    }
    return 0;
}

IoResult io_failure(int error_number) {
    if (error_number == EAGAIN || error_number == EWOULDBLOCK) {
        return IoResult::would_block();
    }
    return IoResult::failed(transport_error_from_errno(error_number));
}

}  // namespace

PosixTransport::PosixTransport(TlsContext* tls) : default_tls_(tls) {}

Status PosixTransport::open(const net::IpAddress& address, std::uint16_t port, bool tls,
                            const char* server_name, TransportError* error) {
    if (tls && default_tls_ == nullptr) {
        // Never fall back to plain TCP for a wss:// endpoint.
        *error = TransportError::kTlsFailed;
        return Status::kInvalidArgument;
    }
    return open(address, port, tls ? default_tls_ : nullptr, server_name, error);
}

PosixTransport::~PosixTransport() {
    close();
    destroy_tls_state();
}

Status PosixTransport::open(const net::IpAddress& address, std::uint16_t port, TlsContext* tls,
                            const char* server_name, TransportError* error) {
    TransportError ignored;
    if (error == nullptr) {
        error = &ignored;
    }
    *error = TransportError::kNone;
    close();
    sockaddr_storage storage;
    const socklen_t length = make_sockaddr(address, port, &storage);
    if (length == 0) {
        *error = TransportError::kOther;
        return Status::kInvalidArgument;
    }
    const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = transport_error_from_errno(errno);
        return Status::kIoError;
    }
    // Telemetry frames are small and latency matters more than packing.
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    // A connect that completes at once (loopback can) still goes through
    // the completion check in establish(), so there is one path.
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
        // EINTR leaves the connect running in the background, like EINPROGRESS.
        if (errno != EINPROGRESS && errno != EINTR) {
            *error = transport_error_from_errno(errno);
            ::close(fd);
            return Status::kIoError;
        }
    }
    fd_ = fd;
    phase_ = Phase::kConnecting;
    if (tls != nullptr) {
        const Status started = start_tls(tls, server_name, error);
        if (started != Status::kOk) {
            close();
            return started;
        }
    }
    return Status::kOk;
}

Status PosixTransport::start_tls(const char* server_name, TransportError* error) {
    TransportError ignored;
    if (error == nullptr) {
        error = &ignored;
    }
    *error = TransportError::kNone;
    if (phase_ != Phase::kEstablished || tls_ != nullptr || default_tls_ == nullptr) {
        *error = default_tls_ == nullptr ? TransportError::kTlsFailed : TransportError::kOther;
        return Status::kInvalidArgument;
    }
    const Status started = start_tls(default_tls_, server_name, error);
    if (started != Status::kOk) {
        return started;
    }
    phase_ = Phase::kHandshaking;
    return Status::kOk;
}

IoResult PosixTransport::fail(TransportError why) {
    phase_ = Phase::kFailed;
    failure_ = why;
    return IoResult::failed(why);
}

IoResult PosixTransport::finish_connect() {
    pollfd entry = {fd_, POLLOUT, 0};
    int ready;
    do {
        ready = ::poll(&entry, 1, 0);
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) {
        return IoResult::would_block();
    }
    int socket_error = 0;
    socklen_t size = sizeof socket_error;
    if (ready < 0 || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &socket_error, &size) != 0) {
        return fail(transport_error_from_errno(errno));
    }
    if (socket_error != 0) {
        return fail(transport_error_from_errno(socket_error));
    }
    phase_ = tls_ != nullptr ? Phase::kHandshaking : Phase::kEstablished;
    return IoResult::ok(0);
}

IoResult PosixTransport::establish() {
    switch (phase_) {
        case Phase::kIdle:
            return IoResult::failed(TransportError::kOther);
        case Phase::kFailed:
            return IoResult::failed(failure_);
        case Phase::kConnecting: {
            const IoResult connected = finish_connect();
            if (connected.status != IoStatus::kOk || phase_ == Phase::kEstablished) {
                return connected;
            }
            return handshake();
        }
        case Phase::kHandshaking:
            return handshake();
        case Phase::kEstablished:
            break;
    }
    return IoResult::ok(0);
}

// Reads and writes before establishment has finished are not errors of the
// stream: the caller simply comes back once establish() said kOk.
IoResult PosixTransport::not_established() const {
    if (phase_ == Phase::kFailed) {
        return IoResult::failed(failure_);
    }
    if (phase_ == Phase::kIdle) {
        return IoResult::failed(TransportError::kOther);
    }
    return IoResult::would_block();
}

IoResult PosixTransport::read(std::uint8_t* out, std::size_t size) {
    if (phase_ != Phase::kEstablished) {
        return not_established();
    }
    if (size == 0) {
        return IoResult::ok(0);
    }
    if (tls_ != nullptr) {
        return tls_read(out, size);
    }
    for (;;) {
        const ssize_t got = ::recv(fd_, out, size, 0);
        if (got > 0) {
            return IoResult::ok(static_cast<std::size_t>(got));
        }
        if (got == 0) {
            return IoResult::closed();
        }
        if (errno != EINTR) {
            const IoResult result = io_failure(errno);
            return result.status == IoStatus::kError ? fail(result.error) : result;
        }
    }
}

IoResult PosixTransport::write(const std::uint8_t* data, std::size_t size) {
    const IoSlice slice = {data, size};
    return writev(&slice, 1);
}

IoResult PosixTransport::writev(const IoSlice* slices, std::size_t count) {
    if (phase_ != Phase::kEstablished) {
        return not_established();
    }
    if (tls_ != nullptr) {
        return tls_send(slices, count);
    }
    iovec vectors[kMaxIovecs];
    std::size_t used = 0;
    for (std::size_t i = 0; i < count && used < kMaxIovecs; ++i) {
        if (slices[i].size > 0) {
            vectors[used].iov_base = const_cast<std::uint8_t*>(slices[i].data);
            vectors[used].iov_len = slices[i].size;
            ++used;
        }
    }
    if (used == 0) {
        return IoResult::ok(0);
    }
    msghdr message = {};
    message.msg_iov = vectors;
    message.msg_iovlen = used;
    for (;;) {
        // MSG_NOSIGNAL: a peer that went away is an error code, never SIGPIPE.
        const ssize_t sent = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
        if (sent >= 0) {
            return IoResult::ok(static_cast<std::size_t>(sent));
        }
        if (errno != EINTR) {
            const IoResult result = io_failure(errno);
            return result.status == IoStatus::kError ? fail(result.error) : result;
        }
    }
}

PollInterest PosixTransport::interest(bool want_read, bool want_write) const {
    PollInterest wanted;
    switch (phase_) {
        case Phase::kConnecting:
            wanted.write = true;
            break;
        case Phase::kHandshaking:
            wanted.read = handshake_wants_read_;
            wanted.write = handshake_wants_write_;
            break;
        case Phase::kEstablished:
            wanted.read = want_read || write_wants_read_;
            wanted.write = want_write || read_wants_write_;
            break;
        case Phase::kIdle:
        case Phase::kFailed:
            break;
    }
    return wanted;
}

void PosixTransport::close() {
    if (fd_ >= 0) {
        end_tls();
        ::close(fd_);
        fd_ = -1;
    }
    phase_ = Phase::kIdle;
    failure_ = TransportError::kNone;
    tls_ = nullptr;
    handshake_wants_read_ = false;
    handshake_wants_write_ = false;
    read_wants_write_ = false;
    write_wants_read_ = false;
}

}  // namespace tether::port

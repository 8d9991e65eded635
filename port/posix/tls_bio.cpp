// SPDX-License-Identifier: MIT
#include "tls_bio.h"

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <sys/socket.h>

#include <cerrno>

#include "socket_errors.h"

namespace tether::port {

int SocketBio::send(void* context, const unsigned char* data, std::size_t size) {
    SocketBio* bio = static_cast<SocketBio*>(context);
    for (;;) {
        const ssize_t sent = ::send(bio->fd, data, size, MSG_NOSIGNAL);
        if (sent >= 0) {
            return static_cast<int>(sent);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return MBEDTLS_ERR_SSL_WANT_WRITE;
        }
        if (errno != EINTR) {
            bio->io_error = transport_error_from_errno(errno);
            return MBEDTLS_ERR_NET_SEND_FAILED;
        }
    }
}

int SocketBio::recv(void* context, unsigned char* out, std::size_t size) {
    SocketBio* bio = static_cast<SocketBio*>(context);
    for (;;) {
        const ssize_t got = ::recv(bio->fd, out, size, 0);
        if (got >= 0) {
            return static_cast<int>(got);
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return MBEDTLS_ERR_SSL_WANT_READ;
        }
        if (errno != EINTR) {
            bio->io_error = transport_error_from_errno(errno);
            return MBEDTLS_ERR_NET_RECV_FAILED;
        }
    }
}

}  // namespace tether::port

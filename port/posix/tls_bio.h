// SPDX-License-Identifier: MIT
// The mbedTLS BIO over a non-blocking socket, shared by the client and the
// server transports: "would block" becomes WANT_READ/WANT_WRITE, and a
// socket error is remembered so the transport can report it as what it was
// (reset, unreachable, ...) rather than as a TLS failure.
#pragma once

#include <cstddef>

#include "tether/transport.h"

namespace tether::port {

struct SocketBio {
    int fd = -1;
    TransportError io_error = TransportError::kNone;  // set on a socket error

    /// mbedtls_ssl_set_bio callbacks; `context` is the SocketBio.
    static int send(void* context, const unsigned char* data, std::size_t size);
    static int recv(void* context, unsigned char* out, std::size_t size);
};

}  // namespace tether::port

// SPDX-License-Identifier: MIT
#include "socket_errors.h"

#include <cerrno>

namespace tether::port {

TransportError transport_error_from_errno(int error_number) {
    switch (error_number) {
        case ECONNREFUSED:
            return TransportError::kRefused;
        case ECONNRESET:
        case EPIPE:
        case ECONNABORTED:
            return TransportError::kReset;
        case ETIMEDOUT:
            return TransportError::kTimedOut;
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EADDRNOTAVAIL:
        case ENETDOWN:
            return TransportError::kUnreachable;
        default:
            return TransportError::kOther;
    }
}

}  // namespace tether::port

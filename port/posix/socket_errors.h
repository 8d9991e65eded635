// SPDX-License-Identifier: MIT
// How errno values of socket calls map onto TransportError.
#pragma once

#include "tether/transport.h"

namespace tether::port {

/// The transport error for an errno value of connect, send, recv or SO_ERROR.
TransportError transport_error_from_errno(int error_number);

}  // namespace tether::port

// SPDX-License-Identifier: MIT
#include <cerrno>
#include <cstring>

#include "../../port/posix/socket_errors.h"
#include "support/tether_strings.h"
#include "tether/transport.h"

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>

using tether::IoStatus;
using tether::TransportError;

TEST_GROUP(TransportErrors){};

TEST(TransportErrors, ErrnoValuesMapOntoTheFailurePolicy) {
    using tether::port::transport_error_from_errno;
    CHECK_EQUAL(TransportError::kRefused, transport_error_from_errno(ECONNREFUSED));
    CHECK_EQUAL(TransportError::kReset, transport_error_from_errno(ECONNRESET));
    CHECK_EQUAL(TransportError::kReset, transport_error_from_errno(EPIPE));
    CHECK_EQUAL(TransportError::kReset, transport_error_from_errno(ECONNABORTED));
    CHECK_EQUAL(TransportError::kTimedOut, transport_error_from_errno(ETIMEDOUT));
    CHECK_EQUAL(TransportError::kUnreachable, transport_error_from_errno(ENETUNREACH));
    CHECK_EQUAL(TransportError::kUnreachable, transport_error_from_errno(EHOSTUNREACH));
    CHECK_EQUAL(TransportError::kUnreachable, transport_error_from_errno(EADDRNOTAVAIL));
    CHECK_EQUAL(TransportError::kUnreachable, transport_error_from_errno(ENETDOWN));
    CHECK_EQUAL(TransportError::kOther, transport_error_from_errno(EMFILE));
}

TEST(TransportErrors, EveryValueHasADistinctName) {
    const TransportError errors[] = {TransportError::kNone,
                                     TransportError::kRefused,
                                     TransportError::kReset,
                                     TransportError::kTimedOut,
                                     TransportError::kUnreachable,
                                     TransportError::kTlsFailed,
                                     TransportError::kCertificateInvalid,
                                     TransportError::kOther};
    for (TransportError a : errors) {
        for (TransportError b : errors) {
            CHECK_EQUAL(a == b, std::strcmp(to_string(a), to_string(b)) == 0);
        }
    }
    STRCMP_EQUAL("certificate_invalid", to_string(TransportError::kCertificateInvalid));
    STRCMP_EQUAL("unknown", to_string(static_cast<TransportError>(99)));
    const IoStatus statuses[] = {IoStatus::kOk, IoStatus::kWouldBlock, IoStatus::kClosed,
                                 IoStatus::kError};
    for (IoStatus a : statuses) {
        for (IoStatus b : statuses) {
            CHECK_EQUAL(a == b, std::strcmp(to_string(a), to_string(b)) == 0);
        }
    }
    STRCMP_EQUAL("would_block", to_string(IoStatus::kWouldBlock));
    STRCMP_EQUAL("unknown", to_string(static_cast<IoStatus>(99)));
}

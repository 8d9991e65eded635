// SPDX-License-Identifier: MIT
#include "tether/transport.h"

namespace tether {

const char* to_string(IoStatus status) {
    switch (status) {
        case IoStatus::kOk:
            return "ok";
        case IoStatus::kWouldBlock:
            return "would_block";
        case IoStatus::kClosed:
            return "closed";
        case IoStatus::kError:
            return "error";
    }
    return "unknown";
}

const char* to_string(TransportError error) {
    switch (error) {
        case TransportError::kNone:
            return "none";
        case TransportError::kRefused:
            return "refused";
        case TransportError::kReset:
            return "reset";
        case TransportError::kTimedOut:
            return "timed_out";
        case TransportError::kUnreachable:
            return "unreachable";
        case TransportError::kTlsFailed:
            return "tls_failed";
        case TransportError::kCertificateInvalid:
            return "certificate_invalid";
        case TransportError::kOther:
            return "other";
    }
    return "unknown";
}

const char* to_string(CertificateProblem problem) {
    switch (problem) {
        case CertificateProblem::kNone:
            return "none";
        case CertificateProblem::kUnknownCa:
            return "unknown_ca";
        case CertificateProblem::kExpired:
            return "expired";
        case CertificateProblem::kNotYetValid:
            return "not_yet_valid";
        case CertificateProblem::kRevoked:
            return "revoked";
        case CertificateProblem::kNameMismatch:
            return "name_mismatch";
        case CertificateProblem::kPinMismatch:
            return "pin_mismatch";
        case CertificateProblem::kOther:
            return "other";
    }
    return "unknown";
}

}  // namespace tether

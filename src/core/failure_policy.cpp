// SPDX-License-Identifier: MIT
#include "tether/failure_policy.h"

namespace tether {
namespace {

constexpr std::uint16_t kAnyMin = 0;
constexpr std::uint16_t kAnyMax = 0xFFFF;

using A = RecoveryAction;

// Flag spellings for the table below, so each row reads as a sentence.
constexpr bool kOpensBreaker = true;
constexpr bool kCounts = true;
constexpr bool kSlow = true;
constexpr bool kHonoursRetryAfter = true;
constexpr bool kNo = false;

// The policy. Rows for one kind are adjacent, narrow code ranges first, and
// each kind ends with a catch-all row (checked by static_asserts below), so
// decide() is total. docs/ARCHITECTURE.md shows this table row by row and
// the FailurePolicyDocs test fails when the two differ.
//
// Columns: kind, code_min, code_max,
//          {action, open_breaker, counts_for_breaker, slow_retry, honour_retry_after, reason}
// clang-format off
constexpr FailurePolicyRow kTable[] = {
    {FailureKind::kDnsFailure, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "dns_failure"}},
    // The local network is down, not the endpoint: blaming the endpoint would
    // open every breaker in the pool during a Wi-Fi outage.
    {FailureKind::kNetworkUnreachable, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "network_unreachable"}},
    {FailureKind::kTcpRefused, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "tcp_refused"}},
    {FailureKind::kTcpReset, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "tcp_reset"}},
    {FailureKind::kTcpTimeout, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "tcp_timeout"}},
    {FailureKind::kTlsFailed, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "tls_failed"}},
    // An invalid certificate does not fix itself within seconds.
    {FailureKind::kTlsCertificateInvalid, kAnyMin, kAnyMax,
     {A::kFailOver, kNo, kCounts, kSlow, kNo, "tls_certificate_invalid"}},
    {FailureKind::kHandshakeTimeout, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "handshake_timeout"}},
    {FailureKind::kHandshakeInvalid, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kSlow, kNo, "handshake_invalid"}},

    {FailureKind::kHttpStatus, 401, 401,
     {A::kRefreshCredentialsThenRetry, kNo, kNo, kNo, kNo, "http_unauthorized"}},
    {FailureKind::kHttpStatus, 403, 403,
     {A::kRefreshCredentialsThenRetry, kNo, kNo, kNo, kNo, "http_forbidden"}},
    {FailureKind::kHttpStatus, 429, 429,
     {A::kFailOver, kOpensBreaker, kNo, kNo, kHonoursRetryAfter, "http_rate_limited"}},
    {FailureKind::kHttpStatus, 503, 503,
     {A::kFailOver, kOpensBreaker, kNo, kNo, kHonoursRetryAfter, "http_overloaded"}},
    {FailureKind::kHttpStatus, 500, 599,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kHonoursRetryAfter, "http_server_error"}},
    // 3xx, the other 4xx and nonsense codes: a misconfigured URL or a
    // rejected request cannot be fixed by retrying fast.
    {FailureKind::kHttpStatus, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kSlow, kNo, "http_rejected"}},

    {FailureKind::kProtocolError, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "protocol_error"}},

    {FailureKind::kPeerClosed, 1000, 1000,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "close_normal"}},
    {FailureKind::kPeerClosed, 1001, 1001,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "close_going_away"}},
    {FailureKind::kPeerClosed, 1006, 1006,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "close_abnormal"}},
    {FailureKind::kPeerClosed, 1011, 1011,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "close_internal_error"}},
    {FailureKind::kPeerClosed, 1012, 1012,
     {A::kFailOver, kOpensBreaker, kNo, kNo, kHonoursRetryAfter, "close_service_restart"}},
    {FailureKind::kPeerClosed, 1013, 1013,
     {A::kFailOver, kOpensBreaker, kNo, kNo, kHonoursRetryAfter, "close_try_again_later"}},
    {FailureKind::kPeerClosed, 4001, 4001,
     {A::kRefreshCredentialsThenRetry, kNo, kNo, kNo, kNo, "close_unauthorized"}},
    // The token may not use this session (another user owns it) or this
    // device: the same hello is refused again. A fresh token may be the fix;
    // after that one try, only slowly (no fast loop against the refusal).
    {FailureKind::kPeerClosed, 4003, 4003,
     {A::kRefreshCredentialsThenRetry, kNo, kNo, kSlow, kNo, "close_forbidden"}},
    // A newer instance of this device took over the session: fighting it
    // would make the two evict each other forever.
    {FailureKind::kPeerClosed, 4009, 4009,
     {A::kGiveUp, kNo, kNo, kNo, kNo, "close_superseded"}},
    {FailureKind::kPeerClosed, 4000, 4999,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "close_application"}},
    // 1002, 1003, 1007-1010, 3xxx and the rest: the peer thinks we broke
    // something, or sent a code we do not know.
    {FailureKind::kPeerClosed, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "close_unexpected"}},

    {FailureKind::kConnectionLost, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "connection_lost"}},
    {FailureKind::kDeadLink, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "dead_link"}},

    // The proxy serves every proxied endpoint alike: its own failures say
    // nothing about the endpoint, so they do not count towards its breaker.
    {FailureKind::kProxyRefused, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "proxy_refused"}},
    {FailureKind::kProxyUnreachable, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kNo, kNo, kNo, "proxy_unreachable"}},
    // A proxy connects to the endpoint before it answers CONNECT: silence is
    // usually an endpoint that does not answer the proxy.
    {FailureKind::kProxyTimeout, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kNo, kNo, "proxy_timeout"}},
    // Wrong or missing proxy credentials: no token refresh can fix them (they
    // are the proxy's, not the server's), so retry only slowly, like a 401
    // that a refresh did not cure.
    {FailureKind::kProxyStatus, 407, 407,
     {A::kRetryWithBackoff, kNo, kNo, kSlow, kNo, "proxy_auth_required"}},
    // The proxy's policy refuses this endpoint (host or port); another
    // endpoint may be allowed.
    {FailureKind::kProxyStatus, 403, 403,
     {A::kFailOver, kNo, kCounts, kSlow, kNo, "proxy_forbidden"}},
    // The proxy could not reach the endpoint: the endpoint may be down (or
    // its name unknown). tinyproxy 1.11 says so with 500 "Unable to connect",
    // squid with 503, others with 502 or 504.
    {FailureKind::kProxyStatus, 500, 504,
     {A::kFailOver, kNo, kCounts, kNo, kNo, "proxy_bad_gateway"}},
    {FailureKind::kProxyStatus, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kCounts, kSlow, kNo, "proxy_rejected"}},
    {FailureKind::kProxyInvalid, kAnyMin, kAnyMax,
     {A::kRetryWithBackoff, kNo, kNo, kSlow, kNo, "proxy_malformed"}},
};
// clang-format on

constexpr std::uint32_t kRowCount = sizeof(kTable) / sizeof(kTable[0]);
constexpr std::uint8_t kKindCount = static_cast<std::uint8_t>(FailureKind::kProxyInvalid) + 1u;

// Only reachable with a value outside FailureKind (a corrupted or
// mis-cast input): retry slowly and count it, which is safe for any cause.
constexpr FailureDecision kUnknownFailure = {A::kRetryWithBackoff, kNo, kCounts, kSlow, kNo,
                                             "unknown_failure"};

constexpr bool is_catch_all(const FailurePolicyRow& row) {
    return row.code_min == kAnyMin && row.code_max == kAnyMax;
}

// Every kind has rows, they are adjacent, and the last one catches all codes.
constexpr bool every_kind_ends_with_a_catch_all() {
    for (std::uint8_t kind = 0; kind < kKindCount; ++kind) {
        std::uint32_t first = kRowCount;
        std::uint32_t last = kRowCount;
        for (std::uint32_t i = 0; i < kRowCount; ++i) {
            if (static_cast<std::uint8_t>(kTable[i].kind) == kind) {
                if (first == kRowCount) {
                    first = i;
                } else if (last != i - 1u) {
                    return false;
                }
                last = i;
            }
        }
        if (last == kRowCount || !is_catch_all(kTable[last])) {
            return false;
        }
    }
    return true;
}

// No row is hidden behind a single earlier row of its kind, and no range is
// reversed; a row that can never match is a mistake in the table.
constexpr bool every_row_can_match() {
    for (std::uint32_t i = 0; i < kRowCount; ++i) {
        if (kTable[i].code_min > kTable[i].code_max) {
            return false;
        }
        for (std::uint32_t j = 0; j < i; ++j) {
            if (kTable[j].kind == kTable[i].kind && kTable[j].code_min <= kTable[i].code_min &&
                kTable[i].code_max <= kTable[j].code_max) {
                return false;
            }
        }
    }
    return true;
}

static_assert(every_kind_ends_with_a_catch_all(), "failure policy table is not total");
static_assert(every_row_can_match(), "failure policy table has a row that never matches");

}  // namespace

const char* to_string(FailureKind kind) {
    switch (kind) {
        case FailureKind::kDnsFailure:
            return "dns_failure";
        case FailureKind::kNetworkUnreachable:
            return "network_unreachable";
        case FailureKind::kTcpRefused:
            return "tcp_refused";
        case FailureKind::kTcpReset:
            return "tcp_reset";
        case FailureKind::kTcpTimeout:
            return "tcp_timeout";
        case FailureKind::kTlsFailed:
            return "tls_failed";
        case FailureKind::kTlsCertificateInvalid:
            return "tls_certificate_invalid";
        case FailureKind::kHandshakeTimeout:
            return "handshake_timeout";
        case FailureKind::kHandshakeInvalid:
            return "handshake_invalid";
        case FailureKind::kHttpStatus:
            return "http_status";
        case FailureKind::kProtocolError:
            return "protocol_error";
        case FailureKind::kPeerClosed:
            return "peer_closed";
        case FailureKind::kConnectionLost:
            return "connection_lost";
        case FailureKind::kDeadLink:
            return "dead_link";
        case FailureKind::kProxyRefused:
            return "proxy_refused";
        case FailureKind::kProxyUnreachable:
            return "proxy_unreachable";
        case FailureKind::kProxyTimeout:
            return "proxy_timeout";
        case FailureKind::kProxyStatus:
            return "proxy_status";
        case FailureKind::kProxyInvalid:
            return "proxy_invalid";
    }
    return "unknown";
}

const char* to_string(RecoveryAction action) {
    switch (action) {
        case RecoveryAction::kRetryWithBackoff:
            return "retry_with_backoff";
        case RecoveryAction::kRefreshCredentialsThenRetry:
            return "refresh_credentials_then_retry";
        case RecoveryAction::kFailOver:
            return "fail_over";
        case RecoveryAction::kGiveUp:
            return "give_up";
    }
    return "unknown";
}

FailureDecision decide(const Failure& failure) {
    for (const FailurePolicyRow& row : kTable) {
        if (row.kind == failure.kind && row.code_min <= failure.code &&
            failure.code <= row.code_max) {
            return row.decision;
        }
    }
    return kUnknownFailure;
}

const FailurePolicyRow* failure_policy_table(std::uint32_t* row_count) {
    if (row_count != nullptr) {
        *row_count = kRowCount;
    }
    return kTable;
}

}  // namespace tether

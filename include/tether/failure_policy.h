// SPDX-License-Identifier: MIT
// What the client does after each way a connection can fail.
//
// One table (src/core/failure_policy.cpp) maps every failure to a recovery
// action; docs/ARCHITECTURE.md shows the same table and a unit test keeps the
// two in step. The reconnect state machine applies the decision; this module
// only decides.
#pragma once

#include <cstdint>

namespace tether {

enum class FailureKind : std::uint8_t {
    kDnsFailure,             ///< the name did not resolve
    kNetworkUnreachable,     ///< no route, interface down, address not available
    kTcpRefused,             ///< connection refused
    kTcpReset,               ///< reset or EOF before the WebSocket opened
    kTcpTimeout,             ///< connect did not complete in time
    kTlsFailed,              ///< TLS handshake error other than verification
    kTlsCertificateInvalid,  ///< the server's certificate or pin did not verify
    kHandshakeTimeout,       ///< a phase after TCP (TLS, upgrade, resume) took too long
    kHandshakeInvalid,       ///< 101 response broke RFC 6455 (accept, Upgrade, extensions)
    kHttpStatus,             ///< upgrade answered with a non-101 status; code = status
    kProtocolError,          ///< we saw the peer break RFC 6455 or tether.v1 and closed
    kPeerClosed,             ///< the peer sent a close frame; code = its close code
    kConnectionLost,         ///< TCP reset or EOF on an open WebSocket (close 1006)
    kDeadLink,               ///< heartbeat: no pong within the timeout
    // Through an HTTP CONNECT proxy (net/http_proxy.h):
    kProxyRefused,      ///< the proxy refused the TCP connection
    kProxyUnreachable,  ///< the proxy's TCP connect timed out or was reset
    kProxyTimeout,      ///< the proxy accepted TCP but did not answer CONNECT in time
    /// the proxy answered CONNECT with a non-2xx status; code = status (407
    /// for every refusal of the credentials, a 401 included)
    kProxyStatus,
    kProxyInvalid,  ///< the proxy's answer was no HTTP response, too long, or cut short
};

/// Stable snake_case names for logs and the docs table ("tcp_refused", ...).
const char* to_string(FailureKind kind);

struct Failure {
    FailureKind kind;
    std::uint16_t code = 0;            ///< HTTP status or close code, where the kind has one
    bool has_retry_after = false;      ///< the server asked us to wait
    std::uint32_t retry_after_ms = 0;  ///< how long, when has_retry_after
};

enum class RecoveryAction : std::uint8_t {
    kRetryWithBackoff,  ///< wait the backoff delay, try the best endpoint
    /// fetch a fresh token and retry at once, once per failure streak (until a
    /// connection stays up healthy_after_ms); within a streak, back off
    kRefreshCredentialsThenRetry,
    kFailOver,  ///< prefer the next healthy endpoint
    kGiveUp,    ///< stop reconnecting and report
};

const char* to_string(RecoveryAction action);

struct FailureDecision {
    RecoveryAction action;
    bool open_breaker;        ///< open the endpoint's circuit breaker now
    bool counts_for_breaker;  ///< a consecutive failure towards the breaker threshold
    bool slow_retry;          ///< wait at least the backoff cap: a fast retry cannot fix it
    bool honour_retry_after;  ///< the failure's retry_after_ms is a minimum delay
    const char* reason;       ///< the table row's name, for logs
};

/// Looks the failure up in the policy table. Total: every kind ends with a
/// row for any code. Only `kind` and `code` are read; applying retry_after_ms
/// is the caller's job when honour_retry_after is set. A kind outside the enum
/// gets retry_with_backoff, counting and slow, with reason "unknown_failure".
FailureDecision decide(const Failure& failure);

/// One row of the policy table, exposed so tests and docs can walk it.
struct FailurePolicyRow {
    FailureKind kind;
    std::uint16_t code_min;  ///< inclusive code range the row matches (0..65535 = any)
    std::uint16_t code_max;
    FailureDecision decision;
};

/// The table in match order: the first row whose kind and code range match wins.
/// Static storage; `*row_count` (when not null) receives the number of rows.
const FailurePolicyRow* failure_policy_table(std::uint32_t* row_count);

}  // namespace tether

// SPDX-License-Identifier: MIT
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

// After the standard headers: CppUTest redefines `new` to track leaks.
#include <CppUTest/TestHarness.h>

#include "tether/failure_policy.h"

using tether::Failure;
using tether::FailureDecision;
using tether::FailureKind;
using tether::FailurePolicyRow;
using tether::RecoveryAction;

namespace {

constexpr std::uint8_t kKindCount = static_cast<std::uint8_t>(FailureKind::kProxyInvalid) + 1u;
constexpr std::uint32_t kCodeLimit = 0x10000u;  // one past the largest code

struct Table {
    const FailurePolicyRow* rows;
    std::uint32_t count;
};

Table table() {
    Table t{nullptr, 0};
    t.rows = tether::failure_policy_table(&t.count);
    return t;
}

FailureKind kind_at(std::uint8_t index) {
    return static_cast<FailureKind>(index);
}

FailureDecision decide(FailureKind kind, std::uint32_t code = 0) {
    Failure failure{};
    failure.kind = kind;
    failure.code = static_cast<std::uint16_t>(code);
    return tether::decide(failure);
}

bool row_matches(const FailurePolicyRow& row, FailureKind kind, std::uint32_t code) {
    return row.kind == kind && row.code_min <= code && code <= row.code_max;
}

// A code inside row `index` that no earlier row claims; kCodeLimit if none.
std::uint32_t code_reaching_row(const Table& t, std::uint32_t index, bool from_top) {
    const FailurePolicyRow& row = t.rows[index];
    for (std::uint32_t offset = 0;
         offset <= static_cast<std::uint32_t>(row.code_max - row.code_min); ++offset) {
        const std::uint32_t code = from_top ? row.code_max - offset : row.code_min + offset;
        bool claimed = false;
        for (std::uint32_t earlier = 0; earlier < index; ++earlier) {
            claimed = claimed || row_matches(t.rows[earlier], row.kind, code);
        }
        if (!claimed) {
            return code;
        }
    }
    return kCodeLimit;
}

void check_decision(const FailureDecision& expected, const FailureDecision& actual) {
    STRCMP_EQUAL(tether::to_string(expected.action), tether::to_string(actual.action));
    CHECK_EQUAL(expected.open_breaker, actual.open_breaker);
    CHECK_EQUAL(expected.counts_for_breaker, actual.counts_for_breaker);
    CHECK_EQUAL(expected.slow_retry, actual.slow_retry);
    CHECK_EQUAL(expected.honour_retry_after, actual.honour_retry_after);
    STRCMP_EQUAL(expected.reason, actual.reason);
}

// Checks every field of a decision at once, spelled like the docs table.
void check_decision(const FailureDecision& actual, RecoveryAction action, bool open_breaker,
                    bool counts, bool slow, bool honour, const char* reason) {
    check_decision(FailureDecision{action, open_breaker, counts, slow, honour, reason}, actual);
}

bool is_snake_case(const char* text) {
    if (text == nullptr || *text == '\0') {
        return false;
    }
    for (const char* c = text; *c != '\0'; ++c) {
        const bool allowed = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!allowed) {
            return false;
        }
    }
    return text[0] != '_';
}

// --- Rendering shared with the docs check --------------------------------

using Cells = std::vector<std::string>;

const char* yes_no(bool value) {
    return value ? "yes" : "no";
}

std::string render_codes(const FailurePolicyRow& row) {
    if (row.code_min == 0u && row.code_max == 0xFFFFu) {
        return "any";
    }
    return std::to_string(row.code_min) + "-" + std::to_string(row.code_max);
}

Cells render_row(const FailurePolicyRow& row) {
    return Cells{tether::to_string(row.kind),
                 render_codes(row),
                 tether::to_string(row.decision.action),
                 yes_no(row.decision.open_breaker),
                 yes_no(row.decision.counts_for_breaker),
                 yes_no(row.decision.slow_retry),
                 yes_no(row.decision.honour_retry_after),
                 row.decision.reason};
}

std::string trim(const std::string& text) {
    const char* const blank = " \t\r";
    const std::size_t first = text.find_first_not_of(blank);
    if (first == std::string::npos) {
        return "";
    }
    return text.substr(first, text.find_last_not_of(blank) - first + 1u);
}

// "| a | b |" -> {"a", "b"}; padding inside cells does not matter.
Cells split_markdown_row(const std::string& line) {
    Cells cells;
    std::string body = trim(line);
    if (body.size() >= 2u && body.front() == '|' && body.back() == '|') {
        body = body.substr(1u, body.size() - 2u);
    }
    std::size_t start = 0;
    for (;;) {
        const std::size_t bar = body.find('|', start);
        cells.push_back(trim(body.substr(start, bar - start)));
        if (bar == std::string::npos) {
            break;
        }
        start = bar + 1u;
    }
    return cells;
}

std::string join(const Cells& cells) {
    std::string line = "|";
    for (const std::string& cell : cells) {
        line += " " + cell + " |";
    }
    return line;
}

struct DocsTable {
    bool found_begin = false;
    bool found_end = false;
    std::vector<std::string> lines;  // the non-blank lines between the markers
};

DocsTable read_docs_table(const char* path) {
    DocsTable docs;
    std::ifstream file(path);
    std::string line;
    while (std::getline(file, line)) {
        const std::string trimmed = trim(line);
        if (trimmed == "<!-- failure-policy-table:begin -->") {
            docs.found_begin = true;
        } else if (trimmed == "<!-- failure-policy-table:end -->") {
            docs.found_end = docs.found_begin;
            break;
        } else if (docs.found_begin && !trimmed.empty()) {
            docs.lines.push_back(trimmed);
        }
    }
    return docs;
}

}  // namespace

TEST_GROUP(FailurePolicy){};

TEST(FailurePolicy, EveryRowIsWhatDecideReturnsForCodesInItsRange) {
    const Table t = table();
    CHECK(t.rows != nullptr);
    CHECK(t.count > 0u);
    for (std::uint32_t i = 0; i < t.count; ++i) {
        const FailurePolicyRow& row = t.rows[i];
        for (bool from_top : {false, true}) {
            const std::uint32_t code = code_reaching_row(t, i, from_top);
            CHECK_TEXT(code < kCodeLimit, row.decision.reason);
            const FailureDecision actual = decide(row.kind, code);
            check_decision(row.decision, actual);
        }
    }
}

TEST(FailurePolicy, EveryKindEndsWithACatchAllRow) {
    const Table t = table();
    for (std::uint8_t k = 0; k < kKindCount; ++k) {
        const FailurePolicyRow* last = nullptr;
        for (std::uint32_t i = 0; i < t.count; ++i) {
            if (t.rows[i].kind == kind_at(k)) {
                last = &t.rows[i];
            }
        }
        CHECK_TEXT(last != nullptr, tether::to_string(kind_at(k)));
        UNSIGNED_LONGS_EQUAL(0u, last->code_min);
        UNSIGNED_LONGS_EQUAL(0xFFFFu, last->code_max);
    }
}

TEST(FailurePolicy, EveryKindAndCodeGetsADecisionFromItsOwnRows) {
    const Table t = table();
    for (std::uint8_t k = 0; k < kKindCount; ++k) {
        const FailureKind kind = kind_at(k);
        for (std::uint32_t code = 0; code < kCodeLimit; ++code) {
            const FailureDecision decision = decide(kind, code);
            const FailurePolicyRow* first_match = nullptr;
            for (std::uint32_t i = 0; i < t.count && first_match == nullptr; ++i) {
                if (row_matches(t.rows[i], kind, code)) {
                    first_match = &t.rows[i];
                }
            }
            if (first_match == nullptr ||
                std::strcmp(decision.reason, first_match->decision.reason) != 0) {
                FAIL(tether::to_string(kind));
            }
        }
    }
}

TEST(FailurePolicy, ReasonsAreDistinctSnakeCaseNames) {
    const Table t = table();
    std::set<std::string> seen;
    for (std::uint32_t i = 0; i < t.count; ++i) {
        const char* reason = t.rows[i].decision.reason;
        CHECK_TEXT(is_snake_case(reason), reason);
        CHECK_TEXT(seen.insert(reason).second, reason);
    }
}

TEST(FailurePolicy, RetryAfterFieldsDoNotChangeTheDecision) {
    Failure failure{};
    failure.kind = FailureKind::kHttpStatus;
    failure.code = 503;
    const FailureDecision plain = tether::decide(failure);
    failure.has_retry_after = true;
    failure.retry_after_ms = 120000;
    check_decision(plain, tether::decide(failure));
}

TEST(FailurePolicy, UnknownKindRetriesSlowlyAndCounts) {
    check_decision(decide(static_cast<FailureKind>(200), 0), RecoveryAction::kRetryWithBackoff,
                   false, true, true, false, "unknown_failure");
}

TEST(FailurePolicy, InvalidCertificateFailsOverSlowly) {
    check_decision(decide(FailureKind::kTlsCertificateInvalid), RecoveryAction::kFailOver, false,
                   true, true, false, "tls_certificate_invalid");
}

TEST(FailurePolicy, OtherTlsFailuresRetryAtTheNormalRate) {
    check_decision(decide(FailureKind::kTlsFailed), RecoveryAction::kRetryWithBackoff, false, true,
                   false, false, "tls_failed");
}

TEST(FailurePolicy, LocalNetworkDownDoesNotCountAgainstTheEndpoint) {
    check_decision(decide(FailureKind::kNetworkUnreachable), RecoveryAction::kRetryWithBackoff,
                   false, false, false, false, "network_unreachable");
}

TEST(FailurePolicy, RefusedConnectionRetriesAndCounts) {
    check_decision(decide(FailureKind::kTcpRefused), RecoveryAction::kRetryWithBackoff, false, true,
                   false, false, "tcp_refused");
}

TEST(FailurePolicy, InvalidHandshakeRetriesSlowly) {
    check_decision(decide(FailureKind::kHandshakeInvalid), RecoveryAction::kRetryWithBackoff, false,
                   true, true, false, "handshake_invalid");
}

TEST(FailurePolicy, ServiceUnavailableOpensTheBreakerAndHonoursRetryAfter) {
    check_decision(decide(FailureKind::kHttpStatus, 503), RecoveryAction::kFailOver, true, false,
                   false, true, "http_overloaded");
}

TEST(FailurePolicy, TooManyRequestsOpensTheBreakerAndHonoursRetryAfter) {
    check_decision(decide(FailureKind::kHttpStatus, 429), RecoveryAction::kFailOver, true, false,
                   false, true, "http_rate_limited");
}

TEST(FailurePolicy, UnauthorizedRefreshesCredentials) {
    check_decision(decide(FailureKind::kHttpStatus, 401),
                   RecoveryAction::kRefreshCredentialsThenRetry, false, false, false, false,
                   "http_unauthorized");
    check_decision(decide(FailureKind::kHttpStatus, 403),
                   RecoveryAction::kRefreshCredentialsThenRetry, false, false, false, false,
                   "http_forbidden");
}

TEST(FailurePolicy, OtherServerErrorsRetryCountAndHonourRetryAfter) {
    for (std::uint32_t code : {500u, 502u, 504u, 599u}) {
        check_decision(decide(FailureKind::kHttpStatus, code), RecoveryAction::kRetryWithBackoff,
                       false, true, false, true, "http_server_error");
    }
}

TEST(FailurePolicy, RedirectsAndClientErrorsRetrySlowly) {
    for (std::uint32_t code :
         {0u, 200u, 301u, 302u, 400u, 402u, 404u, 428u, 430u, 499u, 600u, 65535u}) {
        check_decision(decide(FailureKind::kHttpStatus, code), RecoveryAction::kRetryWithBackoff,
                       false, true, true, false, "http_rejected");
    }
}

TEST(FailurePolicy, AbnormalCloseRetriesWithoutCounting) {
    check_decision(decide(FailureKind::kPeerClosed, 1006), RecoveryAction::kRetryWithBackoff, false,
                   false, false, false, "close_abnormal");
}

TEST(FailurePolicy, NormalAndGoingAwayClosesRetryWithoutCounting) {
    check_decision(decide(FailureKind::kPeerClosed, 1000), RecoveryAction::kRetryWithBackoff, false,
                   false, false, false, "close_normal");
    check_decision(decide(FailureKind::kPeerClosed, 1001), RecoveryAction::kRetryWithBackoff, false,
                   false, false, false, "close_going_away");
}

TEST(FailurePolicy, ServerInternalErrorCloseCounts) {
    check_decision(decide(FailureKind::kPeerClosed, 1011), RecoveryAction::kRetryWithBackoff, false,
                   true, false, false, "close_internal_error");
}

TEST(FailurePolicy, RestartAndTryAgainLaterClosesFailOver) {
    check_decision(decide(FailureKind::kPeerClosed, 1012), RecoveryAction::kFailOver, true, false,
                   false, true, "close_service_restart");
    check_decision(decide(FailureKind::kPeerClosed, 1013), RecoveryAction::kFailOver, true, false,
                   false, true, "close_try_again_later");
}

TEST(FailurePolicy, UnauthorizedCloseRefreshesCredentials) {
    check_decision(decide(FailureKind::kPeerClosed, 4001),
                   RecoveryAction::kRefreshCredentialsThenRetry, false, false, false, false,
                   "close_unauthorized");
}

TEST(FailurePolicy, ForbiddenCloseRefreshesOnceThenRetriesSlowly) {
    check_decision(decide(FailureKind::kPeerClosed, 4003),
                   RecoveryAction::kRefreshCredentialsThenRetry, false, false, true, false,
                   "close_forbidden");
}

TEST(FailurePolicy, SupersededSessionGivesUp) {
    check_decision(decide(FailureKind::kPeerClosed, 4009), RecoveryAction::kGiveUp, false, false,
                   false, false, "close_superseded");
}

TEST(FailurePolicy, OtherApplicationClosesRetryWithoutCounting) {
    for (std::uint32_t code : {4000u, 4002u, 4008u, 4010u, 4999u}) {
        check_decision(decide(FailureKind::kPeerClosed, code), RecoveryAction::kRetryWithBackoff,
                       false, false, false, false, "close_application");
    }
}

TEST(FailurePolicy, ProtocolViolationClosesRetryAndCount) {
    for (std::uint32_t code :
         {0u, 1002u, 1003u, 1007u, 1008u, 1009u, 1010u, 1014u, 3000u, 3999u, 5000u}) {
        check_decision(decide(FailureKind::kPeerClosed, code), RecoveryAction::kRetryWithBackoff,
                       false, true, false, false, "close_unexpected");
    }
}

TEST(FailurePolicy, LostConnectionRetriesWithoutCountingAndDeadLinkCounts) {
    check_decision(decide(FailureKind::kConnectionLost), RecoveryAction::kRetryWithBackoff, false,
                   false, false, false, "connection_lost");
    check_decision(decide(FailureKind::kDeadLink), RecoveryAction::kRetryWithBackoff, false, true,
                   false, false, "dead_link");
}

TEST(FailurePolicy, ProxyConnectionFailuresDoNotCountAgainstTheEndpoint) {
    check_decision(decide(FailureKind::kProxyRefused), RecoveryAction::kRetryWithBackoff, false,
                   false, false, false, "proxy_refused");
    check_decision(decide(FailureKind::kProxyUnreachable), RecoveryAction::kRetryWithBackoff, false,
                   false, false, false, "proxy_unreachable");
}

TEST(FailurePolicy, ProxySilenceCountsLikeAnEndpointThatDoesNotAnswer) {
    check_decision(decide(FailureKind::kProxyTimeout), RecoveryAction::kRetryWithBackoff, false,
                   true, false, false, "proxy_timeout");
}

TEST(FailurePolicy, ProxyAuthenticationRequiredRetriesSlowlyWithoutRefreshingTheToken) {
    check_decision(decide(FailureKind::kProxyStatus, 407), RecoveryAction::kRetryWithBackoff, false,
                   false, true, false, "proxy_auth_required");
}

TEST(FailurePolicy, ProxyForbiddenFailsOverSlowly) {
    check_decision(decide(FailureKind::kProxyStatus, 403), RecoveryAction::kFailOver, false, true,
                   true, false, "proxy_forbidden");
}

TEST(FailurePolicy, ProxyBadGatewayFailsOver) {
    for (std::uint32_t code : {500u, 502u, 503u, 504u}) {
        check_decision(decide(FailureKind::kProxyStatus, code), RecoveryAction::kFailOver, false,
                       true, false, false, "proxy_bad_gateway");
    }
}

TEST(FailurePolicy, OtherProxyAnswersRetrySlowly) {
    for (std::uint32_t code : {0u, 301u, 400u, 404u, 405u, 499u, 505u, 599u, 65535u}) {
        check_decision(decide(FailureKind::kProxyStatus, code), RecoveryAction::kRetryWithBackoff,
                       false, true, true, false, "proxy_rejected");
    }
    check_decision(decide(FailureKind::kProxyInvalid), RecoveryAction::kRetryWithBackoff, false,
                   false, true, false, "proxy_malformed");
}

TEST(FailurePolicy, TableCountIsOptional) {
    const Table t = table();
    POINTERS_EQUAL(t.rows, tether::failure_policy_table(nullptr));
}

TEST(FailurePolicy, KindNamesAreDistinctSnakeCase) {
    std::set<std::string> seen;
    for (std::uint8_t k = 0; k < kKindCount; ++k) {
        const char* name = tether::to_string(kind_at(k));
        CHECK_TEXT(is_snake_case(name), name);
        CHECK(std::strcmp(name, "unknown") != 0);
        CHECK_TEXT(seen.insert(name).second, name);
    }
    STRCMP_EQUAL("dns_failure", tether::to_string(FailureKind::kDnsFailure));
    STRCMP_EQUAL("tls_certificate_invalid", tether::to_string(FailureKind::kTlsCertificateInvalid));
    STRCMP_EQUAL("peer_closed", tether::to_string(FailureKind::kPeerClosed));
    STRCMP_EQUAL("dead_link", tether::to_string(FailureKind::kDeadLink));
    STRCMP_EQUAL("proxy_status", tether::to_string(FailureKind::kProxyStatus));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<FailureKind>(kKindCount)));
}

TEST(FailurePolicy, ActionNames) {
    STRCMP_EQUAL("retry_with_backoff", tether::to_string(RecoveryAction::kRetryWithBackoff));
    STRCMP_EQUAL("refresh_credentials_then_retry",
                 tether::to_string(RecoveryAction::kRefreshCredentialsThenRetry));
    STRCMP_EQUAL("fail_over", tether::to_string(RecoveryAction::kFailOver));
    STRCMP_EQUAL("give_up", tether::to_string(RecoveryAction::kGiveUp));
    STRCMP_EQUAL("unknown", tether::to_string(static_cast<RecoveryAction>(4)));
}

TEST_GROUP(FailurePolicyDocs){};

TEST(FailurePolicyDocs, SplitIgnoresPaddingInsideCells) {
    const Cells cells = split_markdown_row("|  a |b|   c d  |");
    LONGS_EQUAL(3, static_cast<long>(cells.size()));
    STRCMP_EQUAL("a", cells[0].c_str());
    STRCMP_EQUAL("b", cells[1].c_str());
    STRCMP_EQUAL("c d", cells[2].c_str());
}

TEST(FailurePolicyDocs, ArchitectureTableMatchesTheCodeRowByRow) {
    const DocsTable docs = read_docs_table(TETHER_SOURCE_DIR "/docs/ARCHITECTURE.md");
    CHECK_TEXT(docs.found_begin, "docs/ARCHITECTURE.md lacks the table's begin marker");
    CHECK_TEXT(docs.found_end, "docs/ARCHITECTURE.md lacks the table's end marker");

    // Header, separator, then one line per code row.
    CHECK_TEXT(docs.lines.size() >= 2u, "docs table lacks its header");

    const Cells header{"Failure",
                       "Codes",
                       "Action",
                       "Opens breaker",
                       "Counts for breaker",
                       "Slow retry",
                       "Honours Retry-After",
                       "Reason"};
    STRCMP_EQUAL(join(header).c_str(), join(split_markdown_row(docs.lines[0])).c_str());

    const Cells separator = split_markdown_row(docs.lines[1]);
    LONGS_EQUAL(static_cast<long>(header.size()), static_cast<long>(separator.size()));
    for (const std::string& cell : separator) {
        CHECK_TEXT(!cell.empty() && cell.find_first_not_of("-:") == std::string::npos,
                   docs.lines[1].c_str());
    }

    // Row by row first, so a missing or extra row names the first difference.
    const Table t = table();
    const std::size_t documented_rows = docs.lines.size() - 2u;
    for (std::size_t i = 0; i < t.count && i < documented_rows; ++i) {
        const std::string expected = join(render_row(t.rows[i]));
        const std::string documented = join(split_markdown_row(docs.lines[i + 2u]));
        STRCMP_EQUAL(expected.c_str(), documented.c_str());
    }
    LONGS_EQUAL(static_cast<long>(t.count), static_cast<long>(documented_rows));
}

// SPDX-License-Identifier: MIT
#include "tether/net/dns_resolver.h"

#include <cstring>

namespace tether::net {

namespace {

constexpr std::size_t kAaaa = 0;  // queries_[] index; AAAA first, as results are ordered
constexpr std::size_t kA = 1;

std::uint32_t clamp(std::uint32_t value, std::uint32_t low, std::uint32_t high) {
    return value < low ? low : (value > high ? high : value);
}

// Length of a NUL-terminated string, stopping at `limit`.
std::size_t bounded_length(const char* text, std::size_t limit) {
    std::size_t len = 0;
    while (len < limit && text[len] != '\0') {
        ++len;
    }
    return len;
}

}  // namespace

const char* to_string(DnsResolverState state) {
    switch (state) {
        case DnsResolverState::kIdle:
            return "idle";
        case DnsResolverState::kResolving:
            return "resolving";
        case DnsResolverState::kDone:
            return "done";
        case DnsResolverState::kFailed:
            return "failed";
    }
    return "unknown";
}

DnsResolver::DnsResolver(const ResolvConf& conf) {
    apply_conf(conf);
    queries_[kAaaa].type = DnsType::kAaaa;
    queries_[kA].type = DnsType::kA;
}

void DnsResolver::reconfigure(const ResolvConf& conf) {
    cancel();
    apply_conf(conf);
}

void DnsResolver::apply_conf(const ResolvConf& conf) {
    conf_ = conf;
    if (conf_.nameserver_count == 0) {
        conf_.nameservers[0] = make_ipv4(127, 0, 0, 1);
        conf_.nameserver_count = 1;
    }
    if (conf_.nameserver_count > ResolvConf::kMaxNameservers) {
        conf_.nameserver_count = ResolvConf::kMaxNameservers;
    }
    if (conf_.search_count > ResolvConf::kMaxSearchDomains) {
        conf_.search_count = ResolvConf::kMaxSearchDomains;
    }
    for (auto& domain : conf_.search) {
        domain[kMaxDnsNameLength] = '\0';
    }
    conf_.timeout_s = clamp(conf_.timeout_s, 1, ResolvConf::kMaxTimeoutS);
    conf_.attempts = clamp(conf_.attempts, 1, ResolvConf::kMaxAttempts);
    conf_.ndots = clamp(conf_.ndots, 0, ResolvConf::kMaxNdots);
}

DnsStatus DnsResolver::start(const char* name, TimeMs now, std::uint32_t random) {
    // Anything longer than a name with its trailing dot is invalid either way.
    const std::size_t len = bounded_length(name, kMaxDnsNameLength + 2);
    result_count_ = 0;
    status_ = DnsStatus::kOk;
    every_candidate_name_error_ = true;
    query_name_[0] = '\0';
    IpAddress literal;
    if (parse_ip_address(name, len, &literal)) {
        std::memcpy(query_name_, name, len);  // a literal is at most 45 characters
        query_name_[len] = '\0';
        result_[0] = literal;
        result_count_ = 1;
        ttl_s_ = kLiteralTtl;
        state_ = DnsResolverState::kDone;
        return DnsStatus::kOk;
    }
    if (!dns_name_is_valid(name, len)) {
        fail(DnsStatus::kInvalidName);
        return DnsStatus::kInvalidName;
    }
    absolute_ = name[len - 1] == '.';
    const std::size_t stem = absolute_ ? len - 1 : len;
    std::memcpy(name_, name, stem);
    name_[stem] = '\0';
    std::uint32_t dots = 0;
    for (std::size_t i = 0; i < stem; ++i) {
        dots += name_[i] == '.' ? 1u : 0u;
    }
    as_is_first_ = dots >= conf_.ndots;
    first_server_ = conf_.rotate ? rotation_++ % conf_.nameserver_count : 0;
    state_ = DnsResolverState::kResolving;
    // The name as is is always a candidate and always fits, so this starts a query.
    begin_candidate(0, now, random);
    return DnsStatus::kOk;
}

void DnsResolver::cancel() {
    state_ = DnsResolverState::kIdle;
    status_ = DnsStatus::kOk;
    result_count_ = 0;
}

// Candidate order (resolv.conf(5)): an absolute name alone; otherwise the
// name as is either before or after the search domains, depending on ndots.
// The composed name is built in a buffer long enough for any name plus any
// domain, and build_query() rejects those over 253 characters.
bool DnsResolver::compose_candidate(std::size_t index) {
    const std::size_t search = absolute_ ? 0 : conf_.search_count;
    const std::size_t as_is_index = as_is_first_ ? 0 : search;
    char composed[2 * (kMaxDnsNameLength + 1)];
    const std::size_t stem = std::strlen(name_);
    std::memcpy(composed, name_, stem + 1);
    if (index != as_is_index) {
        const char* domain = conf_.search[as_is_first_ ? index - 1 : index];
        composed[stem] = '.';
        std::memcpy(composed + stem + 1, domain, std::strlen(domain) + 1);
    }
    for (Query& query : queries_) {
        if (build_query(query.id, composed, query.type, query.packet, sizeof query.packet,
                        &query.packet_size) != DnsStatus::kOk) {
            return false;
        }
    }
    std::memcpy(query_name_, composed, std::strlen(composed) + 1);
    return true;
}

bool DnsResolver::begin_candidate(std::size_t from, TimeMs now, std::uint32_t random) {
    const std::size_t count = (absolute_ ? 0 : conf_.search_count) + 1;
    queries_[kA].id = static_cast<std::uint16_t>(random & 0xFFFFu);
    queries_[kAaaa].id = static_cast<std::uint16_t>(random >> 16);
    if (queries_[kAaaa].id == queries_[kA].id) {
        queries_[kAaaa].id ^= 1u;  // on_datagram() tells the two apart by id
    }
    for (std::size_t index = from; index < count; ++index) {
        if (compose_candidate(index)) {
            candidate_ = index;
            for (Query& query : queries_) {
                query.state = QueryState::kUnsent;
                query.found_count = 0;
                query.ttl_s = 0;
            }
            try_ = 0;
            last_server_error_ = DnsStatus::kOk;
            begin_try(now);
            return true;
        }
    }
    return false;
}

void DnsResolver::begin_try(TimeMs now) {
    for (Query& query : queries_) {
        if (query.state != QueryState::kDone) {
            query.state = QueryState::kUnsent;
        }
    }
    deadline_ = now + conf_.timeout_s * 1000u;
}

std::size_t DnsResolver::current_server() const {
    return (first_server_ + try_) % conf_.nameserver_count;
}

bool DnsResolver::any_addresses() const {
    return queries_[kAaaa].found_count > 0 || queries_[kA].found_count > 0;
}

// A try ended without both answers: by timeout, or by an error from the
// server of the current try. Addresses in hand win over further waiting.
void DnsResolver::next_try(TimeMs now) {
    if (any_addresses()) {
        finish_with_addresses();
        return;
    }
    ++try_;
    if (try_ >= static_cast<std::size_t>(conf_.attempts) * conf_.nameserver_count) {
        fail(last_server_error_ != DnsStatus::kOk ? last_server_error_ : DnsStatus::kTimeout);
        return;
    }
    begin_try(now);
}

// Only the server of the current try moves the lookup on: an error from an
// earlier server arriving late is remembered but must not skip a server.
void DnsResolver::handle_server_error(std::size_t server, DnsStatus status, TimeMs now) {
    last_server_error_ = status;
    if (server == current_server()) {
        next_try(now);
    }
}

void DnsResolver::candidate_ended(bool name_error, TimeMs now, std::uint32_t random) {
    every_candidate_name_error_ = every_candidate_name_error_ && name_error;
    if (!begin_candidate(candidate_ + 1, now, random)) {
        fail(every_candidate_name_error_ ? DnsStatus::kNameError : DnsStatus::kNoAnswer);
    }
}

void DnsResolver::finish_with_addresses() {
    const Query& v6 = queries_[kAaaa];
    const Query& v4 = queries_[kA];
    std::size_t next_v6 = 0;
    std::size_t next_v4 = 0;
    result_count_ = 0;
    while (result_count_ < kMaxAddresses &&
           (next_v6 < v6.found_count || next_v4 < v4.found_count)) {
        if (next_v6 < v6.found_count) {
            result_[result_count_++] = v6.found[next_v6++];
        }
        if (result_count_ < kMaxAddresses && next_v4 < v4.found_count) {
            result_[result_count_++] = v4.found[next_v4++];
        }
    }
    ttl_s_ = 0xFFFFFFFFu;
    for (const Query& query : queries_) {
        if (query.found_count > 0 && query.ttl_s < ttl_s_) {
            ttl_s_ = query.ttl_s;
        }
    }
    state_ = DnsResolverState::kDone;
    status_ = DnsStatus::kOk;
}

void DnsResolver::fail(DnsStatus status) {
    state_ = DnsResolverState::kFailed;
    status_ = status;
    result_count_ = 0;
}

bool DnsResolver::next_datagram(DnsDatagram* out) {
    if (state_ != DnsResolverState::kResolving) {
        return false;
    }
    for (Query& query : queries_) {
        if (query.state == QueryState::kUnsent) {
            query.state = QueryState::kSent;
            *out = DnsDatagram{current_server(), query.packet, query.packet_size};
            return true;
        }
    }
    return false;
}

void DnsResolver::on_datagram(std::size_t server, const std::uint8_t* data, std::size_t size,
                              TimeMs now, std::uint32_t random) {
    if (state_ != DnsResolverState::kResolving || server >= conf_.nameserver_count || size < 2) {
        return;
    }
    const auto id = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
    Query* query = nullptr;
    for (Query& candidate : queries_) {
        if (candidate.id == id && candidate.state != QueryState::kDone) {
            query = &candidate;
        }
    }
    if (query == nullptr) {
        return;
    }
    std::size_t count = 0;
    std::uint32_t ttl = 0;
    const DnsStatus status = parse_answer(data, size, query->id, query_name_, query->type,
                                          query->found, kMaxAddresses, &count, &ttl);
    switch (status) {
        case DnsStatus::kOk:
        case DnsStatus::kNoAnswer:
            break;
        case DnsStatus::kTruncated:
            if (count > 0) {
                break;  // UDP only: use the complete records that did fit
            }
            handle_server_error(server, status, now);
            return;
        case DnsStatus::kNameError:
            if (any_addresses()) {
                break;  // the other family answered: take this as "no data"
            }
            candidate_ended(true, now, random);
            return;
        case DnsStatus::kServerFailure:
        case DnsStatus::kRefused:
        case DnsStatus::kUnexpectedRcode:
            handle_server_error(server, status, now);
            return;
        default:
            return;  // not an answer to our question: possibly spoofed, keep waiting
    }
    query->state = QueryState::kDone;
    query->found_count = count;
    query->ttl_s = ttl;
    if (queries_[kAaaa].state != QueryState::kDone || queries_[kA].state != QueryState::kDone) {
        return;
    }
    if (any_addresses()) {
        finish_with_addresses();
    } else {
        candidate_ended(false, now, random);
    }
}

void DnsResolver::poll(TimeMs now) {
    if (state_ == DnsResolverState::kResolving && time_reached(now, deadline_)) {
        next_try(now);
    }
}

}  // namespace tether::net

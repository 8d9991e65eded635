// SPDX-License-Identifier: MIT
#include "tether/server/redis_engine.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "tether/net/json_document.h"
#include "tether/server/redis_functions.h"

namespace tether::server {
namespace {

// Replies are checked field by field: a reply of the wrong shape (a library
// of another version, a proxy in the way) fails what it answers, never
// crashes or guesses.
bool parse_u64(std::string_view text, std::uint64_t* out) {
    if (text.empty() || text.size() > 20) {
        return false;
    }
    std::uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') {
            return false;
        }
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            return false;
        }
        value = value * 10 + digit;
    }
    *out = value;
    return true;
}

std::string decimal(std::uint64_t value) {
    char text[24];
    std::snprintf(text, sizeof text, "%llu", static_cast<unsigned long long>(value));
    return text;
}

bool integer_at(const RedisValue& reply, std::size_t index, std::uint64_t* out) {
    if (index >= reply.elements.size()) {
        return false;
    }
    const RedisValue& item = reply.elements[index];
    if (item.type != RedisValue::Type::kInteger || item.integer < 0) {
        return false;
    }
    *out = static_cast<std::uint64_t>(item.integer);
    return true;
}

bool text_at(const RedisValue& reply, std::size_t index, std::string_view* out) {
    if (index >= reply.elements.size()) {
        return false;
    }
    const RedisValue& item = reply.elements[index];
    if (item.type != RedisValue::Type::kString && item.type != RedisValue::Type::kStatus) {
        return false;
    }
    *out = item.text;
    return true;
}

// One numeric field of the state hash (HGETALL's flat field/value list).
bool state_number(const RedisValue& hash, std::string_view name, std::uint64_t* out) {
    if (hash.type != RedisValue::Type::kArray) {
        return false;
    }
    for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
        if (hash.elements[i].text == name) {
            return parse_u64(hash.elements[i + 1].text, out);
        }
    }
    return false;
}

// The state hash (HGETALL's flat field/value list) into the fields of
// SessionStats it holds. Unknown fields are skipped (backends may add some).
bool parse_state(const RedisValue& hash, SessionStats* out) {
    if (hash.type != RedisValue::Type::kArray || hash.elements.size() % 2 != 0) {
        return false;
    }
    struct Field {
        const char* name;
        std::uint64_t* value;
    };
    std::uint64_t version = 0;
    const Field numbers[] = {
        {"version", &version},
        {"received", &out->received},
        {"duplicates", &out->duplicates},
        {"highest_seq", &out->highest_seq},
        {"next_expected", &out->next_expected},
        {"gap_count", &out->gap_count},
        {"missing_seqs", &out->missing_seqs},
        {"unreported_gaps", &out->unreported_gaps},
        {"downlink_last", &out->downlink_last_seq},
        {"downlink_acked", &out->downlink_acked},
        {"desired_version", &out->desired_version},
        {"desired_applied", &out->desired_applied},
        {"reported_version", &out->reported_version},
    };
    for (std::size_t i = 0; i < hash.elements.size(); i += 2) {
        const std::string& name = hash.elements[i].text;
        const std::string& value = hash.elements[i + 1].text;
        if (name == "device") {
            out->device = value;
            continue;
        }
        if (name == "owner") {
            out->owner = value;
            continue;
        }
        for (const Field& field : numbers) {
            if (name == field.name && !parse_u64(value, field.value)) {
                return false;
            }
        }
    }
    if (version > UINT32_MAX) {
        return false;
    }
    out->version = static_cast<std::uint32_t>(version);
    return true;
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// XRANGE's reply: entries [id, [field, value, ...]] with ids "<n>-0". Calls
// visit(n, fields) for each entry in order; false when the reply has another
// shape or visit() refuses an entry.
template <typename Visit>
bool for_each_stream_entry(const RedisValue& reply, Visit visit) {
    if (reply.type != RedisValue::Type::kArray) {
        return false;
    }
    for (const RedisValue& entry : reply.elements) {
        if (entry.type != RedisValue::Type::kArray || entry.elements.size() != 2 ||
            entry.elements[1].type != RedisValue::Type::kArray) {
            return false;
        }
        const std::string& id = entry.elements[0].text;
        const std::size_t dash = id.find('-');
        std::uint64_t number = 0;
        if (dash == std::string::npos ||
            !parse_u64(std::string_view(id).substr(0, dash), &number) ||
            !visit(number, entry.elements[1].elements)) {
            return false;
        }
    }
    return true;
}

// The value of `name` among an entry's fields, or null.
const std::string* stream_field(const std::vector<RedisValue>& fields, std::string_view name) {
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].text == name) {
            return &fields[i + 1].text;
        }
    }
    return nullptr;
}

// P:{S}:down's entries: ids "<seq>-0", the message in field "payload".
bool parse_downlink(const RedisValue& reply, std::vector<DownlinkMessage>* out) {
    return for_each_stream_entry(
        reply, [out](std::uint64_t seq, const std::vector<RedisValue>& fields) {
            DownlinkMessage message;
            message.seq = seq;
            if (const std::string* bytes = stream_field(fields, "payload")) {
                message.payload.assign(bytes->begin(), bytes->end());
            }
            out->push_back(std::move(message));
            return true;
        });
}

std::string_view as_text(const std::uint8_t* bytes, std::size_t size) {
    return size == 0 ? std::string_view()
                     : std::string_view(reinterpret_cast<const char*>(bytes), size);
}

bool plain_name(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    return std::none_of(text.begin(), text.end(), [](char c) {
        return c == '{' || c == '}' || c == ' ' || static_cast<unsigned char>(c) < 0x21;
    });
}

// The state hash fields every state operation reads (HMGET, in this order):
// `version` tells an unknown session (no hello ever) from one without state.
constexpr std::string_view kStateFields[] = {"version",         "desired_version",  "desired",
                                             "desired_applied", "reported_version", "reported",
                                             "report_id"};
constexpr std::size_t kStateFieldCount = sizeof kStateFields / sizeof kStateFields[0];

// HMGET's reply into documents; *exists false when the session has no state
// hash. False for a reply of the wrong shape or a version that is no number.
bool parse_documents(const RedisValue& reply, StateDocuments* out, bool* exists) {
    if (reply.type != RedisValue::Type::kArray || reply.elements.size() != kStateFieldCount) {
        return false;
    }
    const std::vector<RedisValue>& v = reply.elements;
    for (const RedisValue& item : v) {
        if (item.type != RedisValue::Type::kNil && item.type != RedisValue::Type::kString) {
            return false;
        }
    }
    *exists = v[0].type == RedisValue::Type::kString;
    const auto number = [](const RedisValue& item, std::uint64_t* value) {
        *value = 0;
        return item.type == RedisValue::Type::kNil || parse_u64(item.text, value);
    };
    const auto document = [](const RedisValue& item, std::string* text) {
        *text = item.type == RedisValue::Type::kNil ? std::string("{}") : item.text;
    };
    if (!number(v[1], &out->desired_version) || !number(v[3], &out->desired_applied) ||
        !number(v[4], &out->reported_version)) {
        return false;
    }
    document(v[2], &out->desired);
    document(v[5], &out->reported);
    out->report_id = v[6].type == RedisValue::Type::kNil ? std::string() : v[6].text;
    return true;
}

// P:{S}:desired's entries: ids "<version>-0", the increment in field
// "patch" (an entry without one is refused).
bool parse_increments(const RedisValue& reply, std::vector<DesiredChange>* out) {
    return for_each_stream_entry(
        reply, [out](std::uint64_t version, const std::vector<RedisValue>& fields) {
            const std::string* patch = stream_field(fields, "patch");
            if (patch == nullptr) {
                return false;
            }
            out->push_back(DesiredChange{version, false, *patch});
            return true;
        });
}

bool is_report_id(std::string_view id) {
    return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// A merge in C++ (json_document.h): kOk, kTooLarge (the result exceeds
// kMaxStateDocument), kInvalidArgument (either text is no valid object).
Status merge(const std::string& document, std::string_view patch, std::string* out) {
    out->resize(net::v1::kMaxStateDocument);
    std::size_t length = 0;
    const net::v1::V1Status status =
        net::v1::apply_merge_patch(document.data(), document.size(), patch.data(), patch.size(),
                                   &(*out)[0], out->size(), &length);
    if (status == net::v1::V1Status::kBufferTooSmall) {
        return Status::kTooLarge;
    }
    if (status != net::v1::V1Status::kOk || length > out->size()) {
        return Status::kInvalidArgument;
    }
    out->resize(length);
    return Status::kOk;
}

// The compact form of `text` (json_document.h): kOk, kTooLarge, kInvalidArgument.
Status compact(std::string_view text, std::string* out) {
    out->resize(net::v1::kMaxStateDocument);
    std::size_t length = 0;
    const net::v1::V1Status status =
        net::v1::compact_object(text.data(), text.size(), &(*out)[0], out->size(), &length);
    if (status == net::v1::V1Status::kBufferTooSmall) {
        return Status::kTooLarge;
    }
    if (status != net::v1::V1Status::kOk || length > out->size()) {
        return Status::kInvalidArgument;
    }
    out->resize(length);
    return Status::kOk;
}

// One queued uplink DATA or gap, in arrival order.
struct QueuedOp {
    bool is_gap = false;
    std::uint64_t seq = 0;  // DATA: seq; gap: first
    std::uint64_t last = 0;
    std::string bytes;  // DATA: payload; gap: reason
    UplinkMeta meta;
};

}  // namespace

struct RedisEngine::Served {
    std::string id;
    std::uint32_t version = 0;  // the version of the hello accepted here
    std::uint64_t epoch = 0;    // its epoch: every write carries it (the fence)
    bool welcomed = false;      // its hello's answer went out
    std::deque<DownlinkMessage> held;
    std::uint64_t fetched_through = 0;  // highest downlink seq fetched or known gone
    bool fetch_in_flight = false;
    bool fetch_again = false;
    std::uint64_t acknowledgeable = 0;
    std::uint64_t acked_sent = 0;  // highest downlink ack sent
    SessionStats stats;
    std::vector<QueuedOp> queued;
    std::uint64_t applied_sent = 0;  // highest desired_applied sent
    // The highest desired version this instance knows of (the hello's state,
    // reads, its own writes, P:desired): what the device can have been sent.
    std::uint64_t desired_known = 0;
};

enum class PendingKind : std::uint8_t {
    kLoad,
    kHello,
    kHelloRange,
    kRegister,
    kUplink,
    kGap,
    kAckDownlink,
    kPush,
    kFetch,
    kWait,
    kStateRead,  // HMGET of the state fields, for any state operation
    kSinceRange,
    kDesiredPut,
    kDesiredApplied,
    kReport,
};

enum class StateKind : std::uint8_t { kSince, kSet, kReport, kRead };

struct RedisEngine::Pending {
    PendingKind kind = PendingKind::kLoad;
    std::uint64_t tag = 0;
    std::string session;
    std::uint64_t id = 0;        // hello id, push ticket
    std::uint64_t write_no = 0;  // writes: its number; WAIT: the last write it covers
};

struct RedisEngine::HelloInFlight {
    std::uint64_t ticket = 0;
    std::string session;
    std::uint32_t version = 0;
    std::uint64_t epoch = 0;     // the session's epoch its tether_hello took
    bool decided = false;        // tether_hello accepted it
    bool refetch = false;        // a P:downlink message came before the Served existed
    std::uint64_t write_no = 0;  // of its tether_hello
    std::uint64_t desired_version = 0;
    HelloResult result;
    SessionStats stats;
};

// One state operation from its call to its answer (Pending::id names it).
struct RedisEngine::StateOp {
    StateKind kind = StateKind::kRead;
    std::uint64_t ticket = 0;
    std::string session;  // lowercase
    std::string text;     // set: the compact patch; report: the document or patch
    bool has_expected = false;
    std::uint64_t expected = 0;
    std::uint64_t applied = 0;  // since: the device's applied version
    std::uint64_t base = 0;     // report
    std::string report_id;
    bool whole = false;
    std::uint64_t epoch = 0;       // report: of the hello served here
    unsigned reads = 0;            // set: reads sent (kRedisDesiredAttempts at most)
    Status failure = Status::kOk;  // a decided answer (deferred, or since's failed read)
    bool deferred = false;
    bool range_missing = false;  // since: its XRANGE could not be sent
    StateDocuments documents;    // as the last read brought them
    // replicas:N: a write's answer, held until a WAIT confirms it.
    std::uint64_t set_version = 0;
    ReportResult report_result;
};

struct RedisEngine::AwaitingWait {
    std::uint64_t write_no = 0;
    std::string session;
    std::uint64_t last_uplink = 0;  // an uplink acknowledgement
    std::uint64_t hello_id = 0;     // or a hello's answer (non-zero)
    std::uint64_t state_op = 0;     // or a state write's answer (non-zero)
};

bool parse_redis_durability(std::string_view text, RedisEngineOptions* options) {
    if (options == nullptr) {
        return false;
    }
    if (text == "reply") {
        options->durability = RedisDurability::kReply;
        options->replicas = 0;
        return true;
    }
    constexpr std::string_view kReplicas = "replicas:";
    std::uint64_t count = 0;
    if (!starts_with(text, kReplicas) || !parse_u64(text.substr(kReplicas.size()), &count) ||
        count == 0 || count > 1000) {
        return false;
    }
    options->durability = RedisDurability::kReplicas;
    options->replicas = static_cast<std::uint32_t>(count);
    return true;
}

RedisEngine::RedisEngine(RedisLink& link, RedisEngineOptions options)
    : link_(link), options_(std::move(options)) {
    link_.set_events(this);
}

RedisEngine::~RedisEngine() = default;

void RedisEngine::set_events(EngineEvents* events) {
    events_ = events;
}

Status RedisEngine::open(TimeMs now) {
    const bool replicas_ok = options_.durability == RedisDurability::kReply ||
                             (options_.replicas >= 1 && options_.wait_timeout_ms >= 1);
    if (opened_ || events_ == nullptr || !plain_name(options_.prefix) ||
        !plain_name(options_.instance) || !replicas_ok || options_.replay_capacity == 0 ||
        options_.max_payload_size == 0 || options_.max_batch_messages == 0 ||
        options_.max_batch_bytes == 0) {
        return Status::kInvalidArgument;
    }
    opened_ = true;
    now_ = now;
    link_.subscribe({options_.prefix + ":downlink", options_.prefix + ":supersede",
                     options_.prefix + ":desired"});
    link_.start(now);
    return Status::kOk;
}

bool RedisEngine::ready() const {
    return opened_ && library_loaded_ && link_.connected();
}

std::string RedisEngine::key(std::string_view session, std::string_view suffix) const {
    std::string name;
    name.reserve(options_.prefix.size() + session.size() + suffix.size() + 4);
    name.append(options_.prefix).append(":{").append(session).append("}:").append(suffix);
    return name;
}

RedisEngine::Served* RedisEngine::find(std::string_view session) {
    char id[kSessionIdLength + 1];
    if (!session_key(session, id)) {
        return nullptr;
    }
    const auto found = served_.find(std::string_view(id, kSessionIdLength));
    return found == served_.end() ? nullptr : found->second.get();
}

const RedisEngine::Served* RedisEngine::find(std::string_view session) const {
    return const_cast<RedisEngine*>(this)->find(session);
}

bool RedisEngine::send(const std::vector<std::string_view>& args, Pending pending) {
    pending.tag = next_tag_++;
    if (!link_.command(args.data(), args.size(), pending.tag)) {
        return false;
    }
    switch (pending.kind) {
        case PendingKind::kHello:
        case PendingKind::kRegister:
        case PendingKind::kUplink:
        case PendingKind::kGap:
        case PendingKind::kAckDownlink:
        case PendingKind::kPush:
        case PendingKind::kDesiredPut:
        case PendingKind::kDesiredApplied:
        case PendingKind::kReport:
            pending.write_no = ++writes_sent_;
            break;
        case PendingKind::kWait:
            pending.write_no = writes_sent_;
            break;
        default:
            break;
    }
    pending_.push_back(std::move(pending));
    return true;
}

void RedisEngine::log_once(bool* flag, std::string_view line) {
    if (flag != nullptr) {
        if (*flag) {
            return;
        }
        *flag = true;
    }
    if (options_.log) {
        options_.log(line);
    }
}

Status RedisEngine::hello(const HelloRequest& request, std::uint64_t ticket) {
    char id[kSessionIdLength + 1];
    if (!session_key(request.session, id) || request.version == 0 || request.device.empty() ||
        request.device.size() > kMaxDeviceLength || request.last_downlink > kMaxSeq ||
        request.oldest_uplink > kMaxSeq) {
        return Status::kInvalidArgument;
    }
    if (!ready()) {
        return Status::kUnavailable;
    }
    const std::string session(id, kSessionIdLength);
    if (Served* existing = find(session)) {
        send_batches(*existing);  // an older connection's DATA go before the hello
    }
    const std::string state = key(session, "state");
    const std::string down = key(session, "down");
    const std::string version = decimal(request.version);
    const std::string last_downlink = decimal(request.last_downlink);
    const std::string oldest_uplink = decimal(request.oldest_uplink);
    const std::string capacity = decimal(options_.replay_capacity);
    const std::uint64_t hello_id = next_hello_id_++;
    Pending first{PendingKind::kHello, 0, session, hello_id, 0};
    if (!send({"FCALL", "tether_hello", "1", state, version, request.device, last_downlink,
               oldest_uplink, request.user, options_.instance},
              first)) {
        return Status::kUnavailable;
    }
    auto in_flight = std::make_unique<HelloInFlight>();
    in_flight->ticket = ticket;
    in_flight->session = session;
    in_flight->version = request.version;
    hellos_[hello_id] = std::move(in_flight);
    // The replay buffer as the hello left it: Redis runs the two in order.
    if (!send({"XRANGE", down, "-", "+", "COUNT", capacity},
              Pending{PendingKind::kHelloRange, 0, session, hello_id, 0})) {
        // Without its replay the hello cannot be answered: the caller says
        // 503 and the device's next hello (a higher epoch) takes over from
        // what this one's tether_hello may have recorded.
        hellos_.erase(hello_id);
        ++store_errors_;
        return Status::kUnavailable;
    }
    // With replicas:N the WAIT goes behind the SADD that follows an accepted
    // hello (handle_hello_range): one WAIT covers both.
    return Status::kOk;
}

UplinkResult RedisEngine::uplink_data(std::string_view session, std::uint64_t seq,
                                      const std::uint8_t* payload, std::size_t size,
                                      const UplinkMeta& meta) {
    if (seq == 0 || seq > kMaxSeq || (payload == nullptr && size != 0)) {
        return UplinkResult::kInvalidArgument;
    }
    Served* served = find(session);
    if (served == nullptr) {
        return UplinkResult::kUnknownSession;
    }
    if (size > options_.max_payload_size) {
        return UplinkResult::kTooLarge;
    }
    if (!ready()) {
        return UplinkResult::kIoError;
    }
    QueuedOp op;
    op.seq = seq;
    op.bytes.assign(as_text(payload, size));
    op.meta = meta;
    served->queued.push_back(std::move(op));
    return UplinkResult::kQueued;
}

GapResult RedisEngine::uplink_gap(std::string_view session, std::uint64_t first, std::uint64_t last,
                                  std::string_view reason) {
    if (first == 0 || last < first || last > kMaxSeq || reason.size() > kMaxGapReasonLength) {
        return GapResult::kInvalidArgument;
    }
    Served* served = find(session);
    if (served == nullptr) {
        return GapResult::kUnknownSession;
    }
    if (!ready()) {
        return GapResult::kIoError;
    }
    QueuedOp op;
    op.is_gap = true;
    op.seq = first;
    op.last = last;
    op.bytes.assign(reason.data(), reason.size());
    served->queued.push_back(std::move(op));
    return GapResult::kQueued;
}

void RedisEngine::send_batches(Served& served) {
    if (served.queued.empty()) {
        return;
    }
    std::vector<QueuedOp> ops;
    ops.swap(served.queued);
    const std::string state = key(served.id, "state");
    const std::string epoch = decimal(served.epoch);
    const std::string maxlen = decimal(options_.uplink_maxlen);
    std::size_t at = 0;
    while (at < ops.size()) {
        if (ops[at].is_gap) {
            const QueuedOp& gap = ops[at++];
            const std::string first = decimal(gap.seq);
            const std::string last = decimal(gap.last);
            if (!send({"FCALL", "tether_gap", "1", state, epoch, first, last, gap.bytes},
                      Pending{PendingKind::kGap, 0, served.id, served.epoch, 0})) {
                return;  // the link is down: on_disconnected fails the session
            }
            continue;
        }
        // One batch: consecutive DATA up to the message and byte bounds (one
        // DATA at least, whatever its size).
        std::vector<std::string> numbers;
        std::size_t end = at;
        std::size_t bytes = 0;
        while (end < ops.size() && !ops[end].is_gap && end - at < options_.max_batch_messages &&
               (end == at || bytes + ops[end].bytes.size() <= options_.max_batch_bytes)) {
            bytes += ops[end].bytes.size();
            ++end;
        }
        numbers.reserve(3 * (end - at));
        for (std::size_t i = at; i < end; ++i) {
            const UplinkMeta& meta = ops[i].meta;
            numbers.push_back(decimal(ops[i].seq));
            numbers.push_back(decimal(meta.received_unix_ms));
            const bool has_captured = meta.has_age && meta.received_unix_ms >= meta.age_ms;
            numbers.push_back(has_captured ? decimal(meta.received_unix_ms - meta.age_ms) : "");
        }
        std::vector<std::string_view> args = {"FCALL", "tether_uplink", "1", state, epoch, maxlen};
        args.reserve(args.size() + 4 * (end - at));
        for (std::size_t i = at; i < end; ++i) {
            const std::size_t n = 3 * (i - at);
            args.insert(args.end(), {numbers[n], numbers[n + 1], numbers[n + 2], ops[i].bytes});
        }
        if (!send(args, Pending{PendingKind::kUplink, 0, served.id, served.epoch, 0})) {
            return;
        }
        at = end;
    }
}

void RedisEngine::send_wait() {
    const std::string replicas = decimal(options_.replicas);
    const std::string timeout = decimal(options_.wait_timeout_ms);
    if (send({"WAIT", replicas, timeout}, Pending{PendingKind::kWait, 0, std::string(), 0, 0})) {
        ++waits_in_flight_;
        last_wait_covers_ = writes_sent_;
    }
}

void RedisEngine::flush(TimeMs now) {
    now_ = now;
    if (!ready()) {
        return;
    }
    for (auto& entry : served_) {
        send_batches(*entry.second);
    }
    if (options_.durability != RedisDurability::kReplicas) {
        return;
    }
    // One WAIT covers every write sent before it on this connection; after a
    // shortfall the held acknowledgements ask again here.
    if (writes_sent_ > last_wait_covers_ || (!awaiting_wait_.empty() && waits_in_flight_ == 0)) {
        send_wait();
    }
}

Status RedisEngine::downlink_acked(std::string_view session, std::uint64_t seq) {
    Served* served = find(session);
    if (served == nullptr) {
        return Status::kNotFound;
    }
    std::uint64_t known = std::max(served->stats.downlink_last_seq, served->fetched_through);
    if (!served->held.empty()) {
        known = std::max(known, served->held.back().seq);
    }
    if (seq > known) {
        return Status::kInvalidArgument;
    }
    if (!ready()) {
        return Status::kIoError;
    }
    while (!served->held.empty() && served->held.front().seq <= seq) {
        served->held.pop_front();
    }
    if (seq <= served->acked_sent || seq <= served->stats.downlink_acked) {
        return Status::kOk;
    }
    const std::string state = key(served->id, "state");
    const std::string epoch = decimal(served->epoch);
    const std::string acked = decimal(seq);
    if (!send({"FCALL", "tether_ack_downlink", "1", state, epoch, acked},
              Pending{PendingKind::kAckDownlink, 0, served->id, served->epoch, 0})) {
        return Status::kIoError;
    }
    served->acked_sent = seq;
    return Status::kOk;
}

Status RedisEngine::push_downlink(std::string_view session, const std::uint8_t* payload,
                                  std::size_t size, std::uint64_t ticket) {
    char id[kSessionIdLength + 1];
    if (!session_key(session, id) || (payload == nullptr && size != 0)) {
        return Status::kInvalidArgument;
    }
    if (size > options_.max_payload_size) {
        return Status::kTooLarge;
    }
    if (!ready()) {
        return Status::kUnavailable;
    }
    const std::string state = key(std::string_view(id, kSessionIdLength), "state");
    const std::string queued = decimal(options_.unix_time_ms ? options_.unix_time_ms() : 0);
    const std::string capacity = decimal(options_.replay_capacity);
    if (!send({"FCALL", "tether_push", "1", state, as_text(payload, size), queued, capacity},
              Pending{PendingKind::kPush, 0, std::string(id, kSessionIdLength), ticket, 0})) {
        return Status::kUnavailable;
    }
    return Status::kOk;
}

const DownlinkMessage* RedisEngine::downlink_next(std::string_view session,
                                                  std::uint64_t after) const {
    const Served* served = find(session);
    if (served == nullptr) {
        return nullptr;
    }
    for (const DownlinkMessage& message : served->held) {
        if (message.seq > after) {
            return &message;
        }
    }
    return nullptr;
}

void RedisEngine::release(std::string_view session) {
    Served* served = find(session);
    if (served == nullptr) {
        return;
    }
    // What the connection sent before it went is still stored (never
    // acknowledged to it: its device resends, Redis drops the duplicates).
    if (ready()) {
        send_batches(*served);
    }
    served_.erase(served->id);
}

// --- Device state ------------------------------------------------------------
//
// Every state operation is a StateOp in state_ops_ from its call to its
// answer; its commands carry its id. Answers decided without Redis (a bad
// patch, a session id that is not canonical) wait in deferred_ for the next
// service(), so no answer comes from inside the call that asked.

RedisEngine::StateOp* RedisEngine::start_state_op(std::uint64_t ticket, std::string_view session,
                                                  std::uint64_t* id) {
    if (!ready() || state_ops_.size() >= kRedisMaxStateOperations) {
        return nullptr;
    }
    auto op = std::make_unique<StateOp>();
    op->ticket = ticket;
    char lower[kSessionIdLength + 1];
    if (session_key(session, lower)) {
        op->session.assign(lower, kSessionIdLength);
    }
    *id = next_state_op_++;
    StateOp* raw = op.get();
    state_ops_[*id] = std::move(op);
    return raw;
}

void RedisEngine::defer(std::uint64_t id, Status status) {
    const auto found = state_ops_.find(id);
    if (found == state_ops_.end()) {
        return;
    }
    found->second->failure = status;
    found->second->deferred = true;
    deferred_.push_back(id);
}

void RedisEngine::answer_deferred() {
    std::vector<std::uint64_t> ids;
    ids.swap(deferred_);  // an event may ask again: that one waits for the next service()
    for (const std::uint64_t id : ids) {
        const auto found = state_ops_.find(id);
        if (found != state_ops_.end()) {
            finish_state_op(id, found->second->failure, 0);
        }
    }
}

// Answers a state operation without documents (a refusal or a failure) and
// forgets it. `version`: set_desired's current version (kConflict).
void RedisEngine::finish_state_op(std::uint64_t id, Status status, std::uint64_t version) {
    const auto found = state_ops_.find(id);
    if (found == state_ops_.end()) {
        return;
    }
    const std::unique_ptr<StateOp> op = std::move(found->second);
    state_ops_.erase(found);
    switch (op->kind) {
        case StateKind::kSince:
            events_->on_desired_since(op->ticket, status, {});
            break;
        case StateKind::kSet:
            events_->on_desired_set(op->ticket, status, version);
            break;
        case StateKind::kReport: {
            ReportResult result;
            result.outcome = ReportOutcome::kUnavailable;
            events_->on_reported(op->ticket, status, result);
            break;
        }
        case StateKind::kRead:
            events_->on_state_read(op->ticket, status, StateDocuments{});
            break;
    }
}

bool RedisEngine::send_state_read(std::uint64_t id, const StateOp& op) {
    const std::string state = key(op.session, "state");
    std::vector<std::string_view> args = {"HMGET", state};
    args.insert(args.end(), std::begin(kStateFields), std::end(kStateFields));
    return send(args, Pending{PendingKind::kStateRead, 0, op.session, id, 0});
}

Status RedisEngine::desired_since(std::string_view session, std::uint64_t applied,
                                  std::uint64_t ticket) {
    std::uint64_t id = 0;
    StateOp* op = start_state_op(ticket, session, &id);
    if (op == nullptr) {
        return Status::kUnavailable;
    }
    op->kind = StateKind::kSince;
    op->applied = applied;
    if (op->session.empty()) {
        defer(id, Status::kNotFound);
        return Status::kOk;
    }
    // The document first, then the increments above the applied version:
    // a change between the two adds an increment above the version read,
    // which handle_since_range leaves out.
    const std::string desired = key(op->session, "desired");
    const std::string after = "(" + decimal(applied) + "-0";
    const std::string count = decimal(kDesiredHistory);
    if (!send_state_read(id, *op)) {
        state_ops_.erase(id);
        return Status::kUnavailable;
    }
    if (!send({"XRANGE", desired, after, "+", "COUNT", count},
              Pending{PendingKind::kSinceRange, 0, op->session, id, 0})) {
        op->range_missing = true;  // answered kUnavailable with the read's reply
    }
    return Status::kOk;
}

Status RedisEngine::set_desired(std::string_view session, std::string_view patch, bool has_expected,
                                std::uint64_t expected, std::uint64_t ticket) {
    std::uint64_t id = 0;
    StateOp* op = start_state_op(ticket, session, &id);
    if (op == nullptr) {
        return Status::kUnavailable;
    }
    op->kind = StateKind::kSet;
    op->has_expected = has_expected;
    op->expected = expected;
    if (op->session.empty()) {
        defer(id, Status::kNotFound);
        return Status::kOk;
    }
    // The increment as it is stored and sent: compact, like every document.
    const Status valid = compact(patch, &op->text);
    if (valid != Status::kOk) {
        defer(id, valid);
        return Status::kOk;
    }
    op->reads = 1;
    if (!send_state_read(id, *op)) {
        state_ops_.erase(id);
        return Status::kUnavailable;
    }
    return Status::kOk;
}

Status RedisEngine::desired_applied(std::string_view session, std::uint64_t version) {
    Served* served = find(session);
    if (served == nullptr) {
        return Status::kNotFound;
    }
    // Beyond what this instance knows of is beyond what the device was sent
    // through it (every version it learns of is in desired_known first).
    if (version > kMaxSeq || version > served->desired_known) {
        return Status::kInvalidArgument;
    }
    if (!ready()) {
        return Status::kIoError;
    }
    if (version <= served->applied_sent) {
        return Status::kOk;
    }
    const std::string state = key(served->id, "state");
    const std::string epoch = decimal(served->epoch);
    const std::string applied = decimal(version);
    if (!send({"FCALL", "tether_desired_applied", "1", state, epoch, applied},
              Pending{PendingKind::kDesiredApplied, 0, served->id, served->epoch, 0})) {
        return Status::kIoError;
    }
    served->applied_sent = version;
    return Status::kOk;
}

Status RedisEngine::report(const ReportRequest& request, std::uint64_t ticket) {
    std::uint64_t id = 0;
    StateOp* op = start_state_op(ticket, request.session, &id);
    if (op == nullptr) {
        return Status::kUnavailable;
    }
    op->kind = StateKind::kReport;
    op->report_id.assign(request.id.data(), request.id.size());
    op->base = request.base;
    op->whole = request.whole;
    op->text.assign(request.document.data(), request.document.size());
    const Served* served = find(request.session);
    if (served == nullptr) {
        defer(id, Status::kNotFound);  // only a connection served here reports
        return Status::kOk;
    }
    if (!is_report_id(request.id) || request.base >= kMaxSeq) {
        defer(id, Status::kInvalidArgument);
        return Status::kOk;
    }
    op->epoch = served->epoch;
    if (!send_state_read(id, *op)) {
        state_ops_.erase(id);
        return Status::kUnavailable;
    }
    return Status::kOk;
}

Status RedisEngine::read_state(std::string_view session, std::uint64_t ticket) {
    std::uint64_t id = 0;
    StateOp* op = start_state_op(ticket, session, &id);
    if (op == nullptr) {
        return Status::kUnavailable;
    }
    op->kind = StateKind::kRead;
    if (op->session.empty()) {
        defer(id, Status::kNotFound);
        return Status::kOk;
    }
    if (!send_state_read(id, *op)) {
        state_ops_.erase(id);
        return Status::kUnavailable;
    }
    return Status::kOk;
}

// An error reply or one of the wrong shape: counted, logged, answered.
void RedisEngine::state_store_error(std::uint64_t id, const Pending& pending,
                                    const RedisValue& reply) {
    ++store_errors_;
    std::string line = "event=redis_state_failed session=";
    line.append(pending.session).append(" error=");
    line.append(reply.is_error() ? reply.text : std::string("unexpected reply"));
    log_once(nullptr, line);
    const bool unknown = reply.is_error() && starts_with(reply.text, "NOTFOUND");
    finish_state_op(id, unknown ? Status::kNotFound : Status::kIoError, 0);
}

void RedisEngine::handle_state_read(Pending& pending, const RedisValue& reply) {
    const auto found = state_ops_.find(pending.id);
    if (found == state_ops_.end()) {
        return;
    }
    StateOp& op = *found->second;
    if (op.range_missing) {
        finish_state_op(pending.id, Status::kUnavailable, 0);
        return;
    }
    bool exists = false;
    if (reply.is_error() || !parse_documents(reply, &op.documents, &exists)) {
        if (op.kind == StateKind::kSince) {
            // Its XRANGE is on the way: the answer goes with it.
            ++store_errors_;
            std::string line = "event=redis_state_failed session=";
            line.append(pending.session).append(" error=").append(reply.text);
            log_once(nullptr, line);
            op.failure = Status::kIoError;
            return;
        }
        state_store_error(pending.id, pending, reply);
        return;
    }
    if (!exists) {
        if (op.kind == StateKind::kSince) {
            op.failure = Status::kNotFound;
            return;
        }
        finish_state_op(pending.id, Status::kNotFound, 0);
        return;
    }
    switch (op.kind) {
        case StateKind::kSince:
            return;  // answered with its XRANGE
        case StateKind::kRead: {
            const std::uint64_t ticket = op.ticket;
            const StateDocuments documents = std::move(op.documents);
            state_ops_.erase(found);
            events_->on_state_read(ticket, Status::kOk, documents);
            return;
        }
        case StateKind::kSet:
            continue_set(pending.id, op);
            return;
        case StateKind::kReport:
            continue_report(pending.id, op);
            return;
    }
}

// set_desired after a read: the merge, then the compare-and-set on the
// version read.
void RedisEngine::continue_set(std::uint64_t id, StateOp& op) {
    const StateDocuments& read = op.documents;
    if (op.has_expected && op.expected != read.desired_version) {
        finish_state_op(id, Status::kConflict, read.desired_version);
        return;
    }
    if (read.desired_version >= kMaxSeq) {
        finish_state_op(id, Status::kTooLarge, read.desired_version);  // versions exhausted
        return;
    }
    std::string merged;
    const Status status = merge(read.desired, op.text, &merged);
    if (status != Status::kOk) {
        if (status == Status::kInvalidArgument) {
            ++store_errors_;  // the patch was checked: the stored document is bad
            log_once(nullptr, "event=redis_state_failed session=" + op.session +
                                  " error=the stored desired document is no JSON object");
        }
        finish_state_op(id, status == Status::kTooLarge ? status : Status::kIoError, 0);
        return;
    }
    const std::string state = key(op.session, "state");
    const std::string base = decimal(read.desired_version);
    const std::string history = decimal(kDesiredHistory);
    if (!send({"FCALL", "tether_desired_put", "1", state, base, merged, op.text, history},
              Pending{PendingKind::kDesiredPut, 0, op.session, id, 0})) {
        finish_state_op(id, Status::kUnavailable, 0);
        return;
    }
    if (options_.durability == RedisDurability::kReplicas) {
        send_wait();
    }
}

// report after a read: a repeated id and a stale base are answered from
// the read; otherwise the merge and the compare-and-set, fenced by epoch.
void RedisEngine::continue_report(std::uint64_t id, StateOp& op) {
    const StateDocuments& read = op.documents;
    ReportResult result;
    if (!read.report_id.empty() && read.report_id == op.report_id) {
        result.outcome = ReportOutcome::kRepeated;
        result.version = read.reported_version;
    } else if (read.reported_version != op.base) {
        result.outcome = ReportOutcome::kStale;
        result.version = read.reported_version;
        result.document = read.reported;
    } else {
        // The document as the device sent it (the server passes on what it
        // could not parse, to be refused here): compact, or merged.
        std::string made;
        const Status status =
            op.whole ? compact(op.text, &made) : merge(read.reported, op.text, &made);
        if (status == Status::kTooLarge) {
            result.outcome = ReportOutcome::kTooLarge;
            result.version = read.reported_version;
        } else if (status != Status::kOk) {
            // Not one JSON object (or a duplicate key, too deep): refused
            // "invalid" with the current version.
            const std::uint64_t ticket = op.ticket;
            result.outcome = ReportOutcome::kUnavailable;
            result.version = read.reported_version;
            state_ops_.erase(id);
            events_->on_reported(ticket, Status::kInvalidArgument, result);
            return;
        } else {
            const std::string state = key(op.session, "state");
            const std::string epoch = decimal(op.epoch);
            const std::string base = decimal(op.base);
            const std::string& document = made;
            if (!send({"FCALL", "tether_report", "1", state, epoch, base, op.report_id, document},
                      Pending{PendingKind::kReport, 0, op.session, id, 0})) {
                finish_state_op(id, Status::kUnavailable, 0);
                return;
            }
            if (options_.durability == RedisDurability::kReplicas) {
                send_wait();
            }
            return;
        }
    }
    const std::uint64_t ticket = op.ticket;
    state_ops_.erase(id);
    events_->on_reported(ticket, Status::kOk, result);
}

void RedisEngine::handle_since_range(Pending& pending, const RedisValue& reply) {
    const auto found = state_ops_.find(pending.id);
    if (found == state_ops_.end()) {
        return;
    }
    StateOp& op = *found->second;
    if (op.failure != Status::kOk) {
        finish_state_op(pending.id, op.failure, 0);
        return;
    }
    std::vector<DesiredChange> increments;
    if (reply.is_error() || !parse_increments(reply, &increments)) {
        state_store_error(pending.id, pending, reply);
        return;
    }
    const StateDocuments& read = op.documents;
    increments.erase(std::remove_if(increments.begin(), increments.end(),
                                    [&read](const DesiredChange& change) {
                                        return change.version > read.desired_version;
                                    }),
                     increments.end());
    const std::vector<DesiredChange> changes =
        desired_sync(op.applied, read.desired_version, read.desired, increments);
    if (Served* served = find(op.session)) {
        served->desired_known = std::max(served->desired_known, read.desired_version);
    }
    const std::uint64_t ticket = op.ticket;
    state_ops_.erase(found);
    events_->on_desired_since(ticket, Status::kOk, changes);
}

void RedisEngine::handle_desired_put(Pending& pending, const RedisValue& reply) {
    const auto found = state_ops_.find(pending.id);
    if (found == state_ops_.end()) {
        return;
    }
    StateOp& op = *found->second;
    std::string_view outcome;
    std::uint64_t version = 0;
    if (reply.is_error() || reply.type != RedisValue::Type::kArray || reply.elements.size() != 2 ||
        !text_at(reply, 0, &outcome) || !integer_at(reply, 1, &version) ||
        (outcome != "ok" && outcome != "conflict")) {
        state_store_error(pending.id, pending, reply);
        return;
    }
    if (outcome == "ok") {
        // Announced here at once, not only by the P:desired message that
        // follows on the other connection: a server that set it sees it.
        desired_changed(op.session, version);
        if (options_.durability == RedisDurability::kReplicas) {
            op.set_version = version;
            hold_for_wait(pending);
            return;
        }
        finish_state_op(pending.id, Status::kOk, version);
        return;
    }
    // Another writer changed the document after the read.
    if (op.has_expected) {
        finish_state_op(pending.id, Status::kConflict, version);
        return;
    }
    if (op.reads >= kRedisDesiredAttempts) {
        ++store_errors_;
        log_once(nullptr, "event=redis_desired_contended session=" + op.session +
                              " reads=" + decimal(op.reads));
        finish_state_op(pending.id, Status::kUnavailable, version);
        return;
    }
    ++op.reads;
    if (!send_state_read(pending.id, op)) {
        finish_state_op(pending.id, Status::kUnavailable, 0);
    }
}

void RedisEngine::handle_report(Pending& pending, const RedisValue& reply) {
    const auto found = state_ops_.find(pending.id);
    if (found == state_ops_.end()) {
        return;
    }
    StateOp& op = *found->second;
    std::string_view outcome;
    std::uint64_t version = 0;
    const bool shaped = !reply.is_error() && reply.type == RedisValue::Type::kArray &&
                        text_at(reply, 0, &outcome) && integer_at(reply, 1, &version);
    ReportResult result;
    result.version = version;
    std::string_view document;
    if (shaped && outcome == "ok" && reply.elements.size() == 2) {
        result.outcome = ReportOutcome::kApplied;
    } else if (shaped && outcome == "repeated" && reply.elements.size() == 2) {
        result.outcome = ReportOutcome::kRepeated;
    } else if (shaped && outcome == "stale" && reply.elements.size() == 3 &&
               text_at(reply, 2, &document)) {
        // The base moved between the read and the write (another connection
        // of the device): refused, never retried on the device's behalf.
        result.outcome = ReportOutcome::kStale;
        result.document.assign(document.data(), document.size());
    } else if (shaped && outcome == "superseded" && reply.elements.size() == 2 &&
               version <= UINT32_MAX) {
        // The connection that reported lost its session: as handle_write.
        const std::string session = op.session;
        const std::uint64_t epoch = op.epoch;
        finish_state_op(pending.id, Status::kUnavailable, 0);
        Served* served = find(session);
        if (served != nullptr && served->epoch == epoch) {
            served_.erase(session);
            events_->on_superseded(session, static_cast<std::uint32_t>(version));
        }
        return;
    } else {
        state_store_error(pending.id, pending, reply);
        return;
    }
    if (result.outcome == ReportOutcome::kApplied &&
        options_.durability == RedisDurability::kReplicas) {
        op.report_result = result;
        hold_for_wait(pending);
        return;
    }
    const std::uint64_t ticket = op.ticket;
    state_ops_.erase(found);
    events_->on_reported(ticket, Status::kOk, result);
}

// Reports on_desired_changed for a session served here, once per version it
// did not know of yet (P:desired repeats what its own writes and reads told).
void RedisEngine::desired_changed(std::string_view session, std::uint64_t version) {
    Served* served = find(session);
    if (served == nullptr || version <= served->desired_known) {
        return;
    }
    served->desired_known = version;
    if (served->welcomed) {
        events_->on_desired_changed(served->id, version);
    }
}

// replicas:N: a state write's answer goes once a WAIT confirms the write (one
// was sent right behind it), like an uplink acknowledgement.
void RedisEngine::hold_for_wait(const Pending& pending) {
    AwaitingWait item;
    item.write_no = pending.write_no;
    item.session = pending.session;
    item.state_op = pending.id;
    awaiting_wait_.push_back(std::move(item));
}

bool RedisEngine::session_stats(std::string_view session, SessionStats* out) const {
    const Served* served = find(session);
    if (served == nullptr || out == nullptr) {
        return false;
    }
    *out = served->stats;
    out->session = served->id;
    out->acknowledgeable = served->acknowledgeable;
    out->gaps.clear();
    out->downlink_held = served->held.size();
    out->downlink_oldest_held = served->held.empty() ? 0 : served->held.front().seq;
    out->downlink_file_records = 0;
    return true;
}

EngineStats RedisEngine::stats() const {
    EngineStats totals;
    totals.sessions = served_.size();
    totals.received = received_;
    totals.duplicates = duplicates_;
    totals.gap_count = gap_count_;
    totals.missing_seqs = missing_seqs_;
    totals.downlink_pushed = downlink_pushed_;
    totals.failed = false;
    totals.ready = ready();
    totals.store_errors = store_errors_;
    return totals;
}

std::vector<std::string> RedisEngine::sessions() const {
    std::vector<std::string> ids;
    ids.reserve(served_.size());
    for (const auto& entry : served_) {
        ids.push_back(entry.first);
    }
    return ids;
}

void RedisEngine::close() {
    flush(now_);
    link_.stop();
}

std::size_t RedisEngine::poll_requests(PollRequest* out, std::size_t max) const {
    return link_.poll_requests(out, max);
}

bool RedisEngine::next_deadline(TimeMs* at) const {
    if (!deferred_.empty()) {
        *at = now_;  // answers decided without Redis go out at the next service()
        return true;
    }
    return link_.next_deadline(at);
}

bool RedisEngine::has_buffered_input() const {
    return !deferred_.empty() || link_.has_buffered_input();
}

void RedisEngine::service(TimeMs now) {
    now_ = now;
    answer_deferred();
    link_.service(now);
}

void RedisEngine::on_connected() {
    pending_.clear();
    writes_sent_ = 0;
    last_wait_covers_ = 0;
    waits_in_flight_ = 0;
    const std::string_view library = redis_function_library();
    if (!send({"FUNCTION", "LOAD", "REPLACE", library}, Pending{})) {
        ++store_errors_;
    }
}

void RedisEngine::on_disconnected(std::string_view reason) {
    library_loaded_ = false;
    ++store_errors_;
    std::string line = "event=redis_down reason=";
    line.append(reason);
    log_once(nullptr, line);
    // Take everything out first: the events may call back into the engine.
    std::deque<Pending> pending;
    pending.swap(pending_);
    std::map<std::uint64_t, std::unique_ptr<HelloInFlight>> hellos;
    hellos.swap(hellos_);
    std::map<std::string, std::unique_ptr<Served>, std::less<>> served;
    served.swap(served_);
    std::map<std::uint64_t, std::unique_ptr<StateOp>> state_ops;
    state_ops.swap(state_ops_);
    deferred_.clear();
    awaiting_wait_.clear();
    waits_in_flight_ = 0;
    for (const auto& entry : hellos) {
        events_->on_hello(entry.second->ticket, Status::kUnavailable, HelloResult{});
    }
    for (const Pending& item : pending) {
        if (item.kind == PendingKind::kPush) {
            events_->on_pushed(item.id, Status::kUnavailable, 0);
        }
    }
    for (const auto& entry : state_ops) {
        StateOp& op = *entry.second;
        const Status status = op.deferred ? op.failure : Status::kUnavailable;
        switch (op.kind) {
            case StateKind::kSince:
                events_->on_desired_since(op.ticket, status, {});
                break;
            case StateKind::kSet:
                events_->on_desired_set(op.ticket, status, 0);
                break;
            case StateKind::kReport: {
                ReportResult result;
                result.outcome = ReportOutcome::kUnavailable;
                events_->on_reported(op.ticket, status, result);
                break;
            }
            case StateKind::kRead:
                events_->on_state_read(op.ticket, status, StateDocuments{});
                break;
        }
    }
    for (const auto& entry : served) {
        if (entry.second->welcomed) {
            events_->on_session_failed(entry.first, Status::kUnavailable);
        }
    }
}

void RedisEngine::fail_session(const std::string& session, Status status) {
    const auto found = served_.find(session);
    if (found == served_.end()) {
        return;
    }
    const bool welcomed = found->second->welcomed;
    served_.erase(found);
    if (welcomed) {
        events_->on_session_failed(session, status);
    }
}

void RedisEngine::on_reply(std::uint64_t tag, const RedisValue& reply) {
    if (pending_.empty() || pending_.front().tag != tag) {
        ++store_errors_;
        log_once(nullptr, "event=redis_protocol_error why=unexpected_reply");
        return;
    }
    Pending pending = std::move(pending_.front());
    pending_.pop_front();
    switch (pending.kind) {
        case PendingKind::kLoad:
            if (reply.is_text(kRedisLibraryName)) {
                library_loaded_ = true;
                load_error_logged_ = false;
            } else {
                ++store_errors_;
                std::string line = "event=redis_function_load_failed error=";
                line.append(reply.text);
                log_once(&load_error_logged_, line);
            }
            break;
        case PendingKind::kHello:
            handle_hello(pending, reply);
            break;
        case PendingKind::kHelloRange:
            handle_hello_range(pending, reply);
            break;
        case PendingKind::kRegister:
            handle_register(pending, reply);
            break;
        case PendingKind::kUplink:
        case PendingKind::kGap:
        case PendingKind::kAckDownlink:
            handle_write(pending, reply);
            break;
        case PendingKind::kPush:
            if (reply.type == RedisValue::Type::kInteger && reply.integer > 0) {
                ++downlink_pushed_;
                // Pushed through this instance to a session it serves: held
                // at once, without waiting for the P:downlink message.
                if (Served* served = find(pending.session)) {
                    fetch_downlink(*served);
                }
                events_->on_pushed(pending.id, Status::kOk,
                                   static_cast<std::uint64_t>(reply.integer));
            } else {
                ++store_errors_;
                const bool unknown = reply.is_error() && starts_with(reply.text, "NOTFOUND");
                events_->on_pushed(pending.id, unknown ? Status::kNotFound : Status::kIoError, 0);
            }
            break;
        case PendingKind::kFetch:
            handle_downlink_range(pending, reply);
            break;
        case PendingKind::kWait:
            handle_wait(pending, reply);
            break;
        case PendingKind::kStateRead:
            handle_state_read(pending, reply);
            break;
        case PendingKind::kSinceRange:
            handle_since_range(pending, reply);
            break;
        case PendingKind::kDesiredPut:
            handle_desired_put(pending, reply);
            break;
        case PendingKind::kDesiredApplied:
            handle_write(pending, reply);
            break;
        case PendingKind::kReport:
            handle_report(pending, reply);
            break;
    }
}

void RedisEngine::handle_hello(Pending& pending, const RedisValue& reply) {
    const auto found = hellos_.find(pending.id);
    if (found == hellos_.end()) {
        return;
    }
    HelloInFlight& hello = *found->second;
    std::string_view decision;
    std::uint64_t fields[7] = {};
    bool ok = reply.type == RedisValue::Type::kArray && reply.elements.size() == 9 &&
              text_at(reply, 0, &decision);
    for (std::size_t i = 0; ok && i < 7; ++i) {
        ok = integer_at(reply, i + 1, &fields[i]);
    }
    if (ok && decision == "accepted") {
        ok = parse_state(reply.elements[8], &hello.stats) &&
             state_number(reply.elements[8], "epoch", &hello.epoch) && hello.epoch != 0;
        if (!state_number(reply.elements[8], "desired_version", &hello.desired_version)) {
            hello.desired_version = 0;  // no desired document yet
        }
    }
    if (!ok || (decision != "accepted" && decision != "superseded" && decision != "forbidden")) {
        ++store_errors_;
        const std::uint64_t ticket = hello.ticket;
        hellos_.erase(found);
        std::string line = "event=redis_hello_failed error=";
        line.append(reply.text);
        log_once(nullptr, line);
        events_->on_hello(ticket, Status::kIoError, HelloResult{});
        return;
    }
    HelloResult& result = hello.result;
    result.resumed = fields[0] != 0;
    result.last_uplink = fields[1];
    result.recorded_hole = fields[2] != 0;
    result.has_downlink_gap = fields[3] != 0;
    if (result.has_downlink_gap) {
        result.downlink_gap = GapRecord{fields[4], fields[5], kReasonExpired};
    }
    result.replay_after = fields[6];
    if (decision != "accepted") {
        result.decision =
            decision == "forbidden" ? HelloDecision::kForbidden : HelloDecision::kSuperseded;
        const std::uint64_t ticket = hello.ticket;
        const HelloResult answer = result;
        hellos_.erase(found);
        events_->on_hello(ticket, Status::kOk, answer);
        return;
    }
    result.decision = HelloDecision::kAccepted;
    hello.decided = true;
    hello.write_no = pending.write_no;
}

void RedisEngine::handle_hello_range(Pending& pending, const RedisValue& reply) {
    const auto found = hellos_.find(pending.id);
    if (found == hellos_.end() || !found->second->decided) {
        return;  // refused, or failed: already answered
    }
    HelloInFlight& hello = *found->second;
    std::vector<DownlinkMessage> messages;
    if (!parse_downlink(reply, &messages)) {
        ++store_errors_;
        const std::uint64_t ticket = hello.ticket;
        hellos_.erase(found);
        events_->on_hello(ticket, Status::kIoError, HelloResult{});
        return;
    }
    auto served = std::make_unique<Served>();
    served->id = hello.session;
    served->version = hello.version;
    served->epoch = hello.epoch;
    served->desired_known = hello.desired_version;
    served->stats = hello.stats;
    served->acknowledgeable = hello.result.last_uplink;
    served->fetched_through = hello.stats.downlink_last_seq;
    for (DownlinkMessage& message : messages) {
        served->fetched_through = std::max(served->fetched_through, message.seq);
        served->held.push_back(std::move(message));
    }
    const bool refetch = hello.refetch;
    Served& entry = *served;
    served_[hello.session] = std::move(served);
    const std::string sessions = options_.prefix + ":sessions";
    // Consumers discover sessions in P:sessions, so the welcome waits for
    // this SADD (or the WAIT behind it): a session is listed before its
    // device may send.
    const bool waits = options_.durability == RedisDurability::kReplicas;
    if (!send({"SADD", sessions, entry.id},
              Pending{PendingKind::kRegister, 0, entry.id, waits ? 0 : pending.id, 0})) {
        // Not listed, so not welcomed: the hello is answered unavailable and
        // the device's next hello registers the session.
        ++store_errors_;
        const std::string id = entry.id;
        welcome(pending.id, id, Status::kUnavailable);
        fail_session(id, Status::kUnavailable);
        return;
    }
    if (refetch) {
        fetch_downlink(entry);
    }
    if (options_.durability == RedisDurability::kReplicas) {
        // Answered once a WAIT confirms the hello and the SADD behind it
        // (writes_sent_: the SADD's number, or the hello's when the link is
        // down and nothing was sent).
        AwaitingWait item;
        item.write_no = std::max(hello.write_no, writes_sent_);
        item.session = entry.id;
        item.hello_id = pending.id;
        awaiting_wait_.push_back(std::move(item));
        send_wait();  // covers the hello and the SADD
        return;
    }
    // Answered when the SADD's reply arrives (handle_register).
}

void RedisEngine::handle_register(const Pending& pending, const RedisValue& reply) {
    if (reply.is_error()) {
        // Consumers find sessions in P:sessions: one missing there would be
        // read by nobody. Fail it, so the device's next hello registers it.
        ++store_errors_;
        std::string line = "event=redis_register_failed session=";
        line.append(pending.session).append(" error=").append(reply.text);
        log_once(nullptr, line);
    }
    // pending.id: the hello this SADD answers (0 when a WAIT answers it).
    if (pending.id != 0) {
        welcome(pending.id, pending.session, reply.is_error() ? Status::kIoError : Status::kOk);
    }
    if (reply.is_error()) {
        fail_session(pending.session, Status::kIoError);
    }
}

void RedisEngine::welcome(std::uint64_t hello_id, const std::string& session, Status status) {
    const auto found = hellos_.find(hello_id);
    if (found == hellos_.end()) {
        return;
    }
    const std::uint64_t ticket = found->second->ticket;
    const HelloResult answer = found->second->result;
    hellos_.erase(found);
    if (status != Status::kOk) {
        events_->on_hello(ticket, status, HelloResult{});
        return;
    }
    Served* served = find(session);
    if (served == nullptr) {
        // Superseded or failed meanwhile: the store answered, but this
        // instance no longer serves it.
        events_->on_hello(ticket, Status::kUnavailable, HelloResult{});
        return;
    }
    served->welcomed = true;
    events_->on_hello(ticket, Status::kOk, answer);
}

void RedisEngine::handle_write(Pending& pending, const RedisValue& reply) {
    std::string_view outcome;
    if (reply.is_error() || reply.type != RedisValue::Type::kArray ||
        !text_at(reply, 0, &outcome)) {
        ++store_errors_;
        std::string line = "event=redis_write_failed session=";
        line.append(pending.session).append(" error=").append(reply.text);
        log_once(nullptr, line);
        const bool unknown = reply.is_error() && starts_with(reply.text, "NOTFOUND");
        fail_session(pending.session, unknown ? Status::kNotFound : Status::kIoError);
        return;
    }
    std::uint64_t value = 0;
    if (outcome == "superseded" && integer_at(reply, 1, &value) && value <= UINT32_MAX) {
        // pending.id: the epoch the write carried. A reply for an older epoch
        // than the one served here now concerns a connection already replaced.
        Served* served = find(pending.session);
        if (served != nullptr && served->epoch == pending.id) {
            served_.erase(pending.session);
            events_->on_superseded(pending.session, static_cast<std::uint32_t>(value));
        }
        return;
    }
    Served* served = find(pending.session);
    if (pending.kind == PendingKind::kDesiredApplied) {
        // {ok, desired_applied} | {invalid, desired_version}: a device that
        // says it applied a version that was never set broke the protocol.
        if (outcome != "ok") {
            ++store_errors_;
            fail_session(pending.session, Status::kInvalidArgument);
        }
        return;
    }
    if (pending.kind == PendingKind::kAckDownlink) {
        if (outcome == "ok" && integer_at(reply, 1, &value) && served != nullptr &&
            reply.elements.size() == 3) {
            (void)parse_state(reply.elements[2], &served->stats);
        } else if (outcome != "ok") {
            ++store_errors_;
            fail_session(pending.session, Status::kInvalidArgument);
        }
        return;
    }
    // tether_uplink: {ok, last_uplink, stored, duplicates, gaps, missing, state};
    // tether_gap: {outcome, last_uplink, gaps, missing, state}.
    const bool is_uplink = pending.kind == PendingKind::kUplink;
    const std::size_t size = is_uplink ? 7 : 5;
    std::uint64_t counts[5] = {};
    bool ok = reply.elements.size() == size;
    for (std::size_t i = 1; ok && i + 1 < size; ++i) {
        ok = integer_at(reply, i, &counts[i - 1]);
    }
    if (!ok) {
        ++store_errors_;
        fail_session(pending.session, Status::kIoError);
        return;
    }
    if (is_uplink) {
        received_ += counts[1];
        duplicates_ += counts[2];
        gap_count_ += counts[3];
        missing_seqs_ += counts[4];
    } else {
        gap_count_ += counts[1];
        missing_seqs_ += counts[2];
    }
    if (served == nullptr) {
        return;
    }
    (void)parse_state(reply.elements[size - 1], &served->stats);
    AwaitingWait item;
    item.write_no = pending.write_no;
    item.session = pending.session;
    item.last_uplink = counts[0];
    if (options_.durability == RedisDurability::kReplicas) {
        awaiting_wait_.push_back(std::move(item));
        return;
    }
    release_acknowledgement(std::move(item));
}

void RedisEngine::release_acknowledgement(AwaitingWait item) {
    if (item.state_op != 0) {
        const auto found = state_ops_.find(item.state_op);
        if (found == state_ops_.end()) {
            return;
        }
        const std::unique_ptr<StateOp> op = std::move(found->second);
        state_ops_.erase(found);
        if (op->kind == StateKind::kSet) {
            events_->on_desired_set(op->ticket, Status::kOk, op->set_version);
        } else {
            events_->on_reported(op->ticket, Status::kOk, op->report_result);
        }
        return;
    }
    if (item.hello_id != 0) {
        welcome(item.hello_id, item.session, Status::kOk);
        return;
    }
    Served* served = find(item.session);
    if (served == nullptr) {
        return;
    }
    served->acknowledgeable = std::max(served->acknowledgeable, item.last_uplink);
    events_->on_acknowledgeable(served->id, served->acknowledgeable);
}

void RedisEngine::handle_wait(Pending& pending, const RedisValue& reply) {
    if (waits_in_flight_ > 0) {
        --waits_in_flight_;
    }
    if (reply.type != RedisValue::Type::kInteger || reply.integer < 0 ||
        static_cast<std::uint64_t>(reply.integer) < options_.replicas) {
        ++wait_shortfalls_;
        ++store_errors_;
        std::string line = "event=redis_wait_shortfall wanted=";
        line.append(decimal(options_.replicas));
        if (reply.type == RedisValue::Type::kInteger && reply.integer >= 0) {
            line.append(" confirmed=").append(decimal(static_cast<std::uint64_t>(reply.integer)));
        } else {
            line.append(" error=").append(reply.text);
        }
        line.append(" (logged once until a WAIT confirms)");
        log_once(&shortfall_logged_, line);
        return;
    }
    shortfall_logged_ = false;
    std::vector<AwaitingWait> ready_items;
    std::vector<AwaitingWait> later;
    for (AwaitingWait& item : awaiting_wait_) {
        (item.write_no <= pending.write_no ? ready_items : later).push_back(std::move(item));
    }
    awaiting_wait_.swap(later);
    for (AwaitingWait& item : ready_items) {
        release_acknowledgement(std::move(item));
    }
}

void RedisEngine::fetch_downlink(Served& served) {
    if (served.fetch_in_flight) {
        served.fetch_again = true;
        return;
    }
    const std::string down = key(served.id, "down");
    const std::string start = "(" + decimal(served.fetched_through) + "-0";
    const std::string capacity = decimal(options_.replay_capacity);
    if (send({"XRANGE", down, start, "+", "COUNT", capacity},
             Pending{PendingKind::kFetch, 0, served.id, 0, 0})) {
        served.fetch_in_flight = true;
        served.fetch_again = false;
    }
}

void RedisEngine::handle_downlink_range(Pending& pending, const RedisValue& reply) {
    Served* served = find(pending.session);
    if (served == nullptr) {
        return;
    }
    served->fetch_in_flight = false;
    std::vector<DownlinkMessage> messages;
    if (!parse_downlink(reply, &messages)) {
        ++store_errors_;
        fail_session(pending.session, Status::kIoError);
        return;
    }
    bool added = false;
    for (DownlinkMessage& message : messages) {
        if (message.seq <= served->fetched_through) {
            continue;
        }
        served->fetched_through = message.seq;
        served->stats.downlink_last_seq = std::max(served->stats.downlink_last_seq, message.seq);
        served->held.push_back(std::move(message));
        added = true;
    }
    while (served->held.size() > options_.replay_capacity) {
        served->held.pop_front();
    }
    // A full page may not be all: ask for the rest.
    if (served->fetch_again || messages.size() >= options_.replay_capacity) {
        fetch_downlink(*served);
    }
    if (added && served->welcomed) {
        events_->on_downlink_ready(served->id);
    }
}

void RedisEngine::on_message(std::string_view channel, std::string_view payload) {
    const std::string_view prefix = options_.prefix;
    if (channel.size() <= prefix.size() || !starts_with(channel, prefix) ||
        channel[prefix.size()] != ':') {
        return;
    }
    const std::string_view name = channel.substr(prefix.size() + 1);
    if (name == "downlink") {
        if (Served* served = find(payload)) {
            fetch_downlink(*served);
            return;
        }
        for (auto& entry : hellos_) {
            if (entry.second->session == payload) {
                entry.second->refetch = true;
            }
        }
        return;
    }
    if (name == "desired") {
        // "S version": the desired document of S changed (here, on another
        // instance, or by a backend).
        const std::size_t space = payload.find(' ');
        std::uint64_t version = 0;
        if (space == std::string_view::npos || !parse_u64(payload.substr(space + 1), &version)) {
            return;
        }
        desired_changed(payload.substr(0, space), version);
        return;
    }
    if (name != "supersede") {
        return;
    }
    // "S version instance epoch"
    const std::size_t first_space = payload.find(' ');
    const std::size_t second_space = payload.find(' ', first_space + 1);
    const std::size_t third_space = payload.find(' ', second_space + 1);
    std::uint64_t version = 0;
    std::uint64_t epoch = 0;
    if (first_space == std::string_view::npos || second_space == std::string_view::npos ||
        third_space == std::string_view::npos ||
        !parse_u64(payload.substr(first_space + 1, second_space - first_space - 1), &version) ||
        version > UINT32_MAX || !parse_u64(payload.substr(third_space + 1), &epoch)) {
        return;
    }
    const std::string_view session = payload.substr(0, first_space);
    if (payload.substr(second_space + 1, third_space - second_space - 1) == options_.instance) {
        return;  // this instance's own hello: the server already closed the older connection
    }
    Served* served = find(session);
    if (served == nullptr || epoch <= served->epoch) {
        return;  // not served here, or news older than the hello served here
    }
    const std::string id = served->id;
    served_.erase(id);
    events_->on_superseded(id, static_cast<std::uint32_t>(version));
}

}  // namespace tether::server

// SPDX-License-Identifier: MIT
// The client side of tether.v1 (docs/PROTOCOL.md): hello and welcome,
// uplink DATA with seqs and gap reports, ACKs both ways, downlink
// de-duplication, and the persisted counters that make a restart resume.
#include <cstdio>
#include <cstring>

#include "tether/client.h"
#include "tether/net/tether_v1.h"
#include "tether/session_id.h"

namespace tether {
namespace {

bool printable(const char* text, std::size_t max) {
    const std::size_t length = text != nullptr ? std::strlen(text) : 0;
    if (length == 0 || length > max) {
        return false;
    }
    for (std::size_t i = 0; i < length; ++i) {
        if (text[i] < 0x21 || text[i] > 0x7E || text[i] == '"' || text[i] == '\\') {
            return false;
        }
    }
    return true;
}

}  // namespace

Status Client::init_resume() {
    Uuid parsed{};
    if (config_.session_id == nullptr || !parse_uuid(config_.session_id, &parsed)) {
        std::snprintf(config_error_, sizeof config_error_, "tether.v1 needs a session id (a UUID)");
        return Status::kInvalidArgument;
    }
    if (!printable(config_.device_id, net::v1::kMaxDeviceLength)) {
        std::snprintf(config_error_, sizeof config_error_,
                      "tether.v1 needs a device id of 1..128 printable characters");
        return Status::kInvalidArgument;
    }
    if (config_.ack_every == 0 || config_.ack_interval_ms == 0 || config_.seq_reservation == 0) {
        std::snprintf(config_error_, sizeof config_error_,
                      "ack and reservation settings must be > 0");
        return Status::kInvalidArgument;
    }
    if (config_.device_state) {
        if (state_document_ == nullptr || state_document_size_ < net::v1::kMaxStateDocument) {
            std::snprintf(config_error_, sizeof config_error_,
                          "device state needs a state document buffer of %zu bytes",
                          net::v1::kMaxStateDocument);
            return Status::kInvalidArgument;
        }
        if (config_.ws.max_message_size < net::v1::kMaxStateMessage ||
            stream_.rx_capacity() < net::v1::kMaxStateMessage) {
            std::snprintf(config_error_, sizeof config_error_,
                          "device state needs a max message size (and receive buffer) of at "
                          "least %zu bytes, the largest state message",
                          net::v1::kMaxStateMessage);
            return Status::kInvalidArgument;
        }
    }
    config_.subprotocols = kV1Protocols;
    config_.subprotocol_count = 1;
    config_.require_subprotocol = true;
    config_.message_type = net::WsOpcode::kBinary;
    if (state_ != nullptr) {
        // A new process is a new session version: it outranks any connection
        // an earlier run of this device may have left behind (close 4009).
        session_version_ = begin_new_session(state_);
        last_delivered_ = state_->last_delivered_downlink_seq;
        last_confirmed_ = last_delivered_;
        last_message_seq_ = last_delivered_;
        last_acked_downlink_ = last_delivered_;
        // The reservation only ever grows: a run that crashed may have used
        // every seq below it.
        state_->next_uplink_seq = outbox_.next_seq() + config_.seq_reservation;
        persist();
    }
    return Status::kOk;
}

// What the server may forget: everything the application has (confirmed,
// or merely delivered when the application does not confirm).
std::uint64_t Client::downlink_ack_target() const {
    return config_.confirm_downlink ? last_confirmed_ : last_delivered_;
}

// Downlink messages were dropped while the application was full (or it gave
// one back), and now it has room: the server sends them again after a
// resume, so reconnect once, but not sooner than kDownlinkReplayMs after the
// drop, so an application that keeps refusing is not a reconnect loop.
bool Client::downlink_replay_due(TimeMs now) {
    if (!downlink_overrun_) {
        return false;
    }
    if (!downlink_overrun_noted_) {
        downlink_overrun_noted_ = true;
        downlink_overrun_at_ = now;
    }
    return time_since(now, downlink_overrun_at_) >= kDownlinkReplayMs && listener_ != nullptr &&
           listener_->downlink_can_accept(config_.ws.max_message_size);
}

void Client::persist() {
    if (state_ == nullptr) {
        return;
    }
    state_->reconnect_attempts = machine_.attempts();
    if (resume_mode()) {
        state_->last_delivered_downlink_seq = downlink_ack_target();
    }
    if (record_ == nullptr) {
        return;
    }
    const bool failed = record_->save(*state_) != Status::kOk;
    if (failed != persist_failed_) {
        persist_failed_ = failed;
        if (listener_ != nullptr) {
            listener_->on_persist(failed ? Status::kIoError : Status::kOk);
        }
    }
}

// Seqs are reserved on disk ahead of use, so a restart (which starts from
// the reserved mark) never reuses a seq the server may already hold.
void Client::reserve_uplink_seqs() {
    if (state_ != nullptr && outbox_.next_seq() + 1 > state_->next_uplink_seq) {
        state_->next_uplink_seq = outbox_.next_seq() + config_.seq_reservation;
        persist();
    }
}

void Client::send_hello(TimeMs now) {
    net::v1::Hello hello;
    std::snprintf(hello.session, sizeof hello.session, "%s", config_.session_id);
    std::snprintf(hello.device, sizeof hello.device, "%s", config_.device_id);
    hello.version = session_version_;
    hello.last_downlink = downlink_ack_target();
    hello.oldest_uplink = outbox_.oldest_seq();
    hello.next_uplink = outbox_.next_seq();
    hello.features = config_.message_age ? net::v1::kFeatureAge : 0;
    if (config_.device_state) {
        hello.features |= net::v1::kFeatureState;
        hello.desired_version = desired_version_;
    }
    char json[net::v1::kMaxControlSize];
    std::size_t length = 0;
    if (net::v1::write_hello(hello, json, sizeof json, &length) != net::v1::V1Status::kOk ||
        !stream_.queue_message(net::WsOpcode::kText, reinterpret_cast<const std::uint8_t*>(json),
                               length)) {
        std::snprintf(detail_, sizeof detail_, "hello=unsendable");
        post(Event::failed(Failure{FailureKind::kProtocolError, net::v1::kCloseViolation}));
        return;
    }
    welcome_seen_ = false;
    violation_ = false;
    age_on_link_ = false;
    state_on_link_ = false;
    report_dropped();
    flush(now);
}

// Runs inside the stream's read: records and updates counters, but leaves
// the machine and the stream alone (after_resume_read() acts on what it saw).
void Client::on_resume_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) {
    if (violation_) {
        return;
    }
    if (type == net::WsOpcode::kText) {
        if (!(state_on_link_ && on_state_text(data, size))) {
            on_control_text(data, size);
        }
        return;
    }
    net::v1::BinaryMessage message{};
    if (!welcome_seen_ || net::v1::decode_binary(data, size, &message) != net::v1::V1Status::kOk) {
        violation_ = true;
        return;
    }
    if (message.kind == net::v1::Kind::kAck) {
        if (message.seq > last_sent_uplink_) {
            violation_ = true;  // acknowledges what was never sent
            return;
        }
        outbox_.ack(message.seq);
        if (message.seq > counters_.uplink_acked) {
            counters_.uplink_acked = message.seq;
            if (listener_ != nullptr) {
                listener_->on_uplink_acked(message.seq);
            }
        }
        return;
    }
    on_downlink_data(message.seq, message.payload, message.payload_size);
}

// A control message (hello, welcome, gap, error) during the session.
void Client::on_control_text(const std::uint8_t* data, std::size_t size) {
    net::v1::Control control{};
    if (net::v1::parse_control(data, size, &control) != net::v1::V1Status::kOk) {
        violation_ = true;
        return;
    }
    switch (control.type) {
        case net::v1::ControlType::kWelcome:
            if (welcome_seen_ || machine_.state() != LinkState::kSessionResume) {
                violation_ = true;
                return;
            }
            welcome_seen_ = true;
            welcome_last_uplink_ = control.welcome.last_uplink;
            // Only what this client offered: an unasked "age" is ignored.
            age_on_link_ =
                config_.message_age && (control.welcome.features & net::v1::kFeatureAge) != 0;
            state_on_link_ =
                config_.device_state && (control.welcome.features & net::v1::kFeatureState) != 0;
            if (control.welcome.resumed) {
                ++counters_.resumed;
            }
            return;
        case net::v1::ControlType::kGap:
            if (!welcome_seen_) {
                violation_ = true;
                return;
            }
            if (downlink_overrun_) {
                return;  // messages before it were not taken: the resume repeats it
            }
            if (control.gap.last > last_delivered_) {
                last_delivered_ = control.gap.last;
                if (!config_.confirm_downlink || last_confirmed_ >= last_message_seq_) {
                    // Nothing before the gap awaits the application.
                    last_confirmed_ = last_delivered_;
                    downlink_ack_pending_ = true;
                }
            }
            if (listener_ != nullptr) {
                listener_->on_gap(true, control.gap.first, control.gap.last);
            }
            return;
        case net::v1::ControlType::kError:
            std::snprintf(detail_, sizeof detail_, "server_error=%u %.60s",
                          static_cast<unsigned>(control.error.code), control.error.message);
            return;
        case net::v1::ControlType::kHello:
            violation_ = true;
            return;
    }
}

// A text message on a connection that negotiated "state": true when it was a
// state message (handled, or a violation recorded), false when its type is
// none of them (the caller parses it as an ordinary control message).
bool Client::on_state_text(const std::uint8_t* data, std::size_t size) {
    net::v1::StateMessage message;
    const net::v1::V1Status status =
        net::v1::parse_state_message(data, size, &message, state_document_, state_document_size_);
    if (status == net::v1::V1Status::kUnknownType) {
        return false;
    }
    const bool has_document = message.type == net::v1::StateType::kDesired ||
                              (message.type == net::v1::StateType::kReportRefused && message.whole);
    if (status != net::v1::V1Status::kOk || listener_ == nullptr ||
        !listener_->on_state_message(message, has_document ? state_document_ : nullptr,
                                     has_document ? message.document_size : 0)) {
        std::snprintf(detail_, sizeof detail_, "state=%s",
                      status != net::v1::V1Status::kOk ? net::v1::to_string(status) : "refused");
        violation_ = true;
    }
    return true;
}

bool Client::queue_state_message(TimeMs now, const char* json, std::size_t size) {
    if (!state_negotiated() ||
        !stream_.queue_message(net::WsOpcode::kText, reinterpret_cast<const std::uint8_t*>(json),
                               size)) {
        return false;
    }
    flush(now);
    return true;
}

void Client::on_downlink_data(std::uint64_t seq, const std::uint8_t* payload, std::size_t size) {
    if (seq <= last_delivered_) {
        ++counters_.downlink_duplicates;  // a replay of what the application already has
        return;
    }
    if (config_.confirm_downlink && listener_ != nullptr &&
        (downlink_overrun_ || !listener_->downlink_can_accept(size))) {
        // Not delivered and not counted as received; the link stays up (pongs,
        // acks and uplink go on), and once the application has room again one
        // resume makes the server send it, and what followed it, again.
        downlink_overrun_ = true;
        ++counters_.downlink_overruns;
        return;
    }
    if (seq > last_delivered_ + 1 && listener_ != nullptr) {
        listener_->on_gap(true, last_delivered_ + 1, seq - 1);  // unannounced by the server
    }
    const std::uint64_t delivered_before = last_delivered_;
    const std::uint64_t message_before = last_message_seq_;
    last_delivered_ = seq;
    last_message_seq_ = seq;
    ++unacked_downlink_;
    downlink_ack_pending_ = !config_.confirm_downlink;
    if (listener_ != nullptr) {
        downlink_refused_ = false;
        listener_->on_downlink_seq(seq);
        listener_->on_message(net::WsOpcode::kBinary, payload, size);
        if (config_.confirm_downlink && downlink_refused_) {
            // Taken back: as if it never arrived, and fetched again by a resume.
            downlink_refused_ = false;
            last_delivered_ = delivered_before;
            last_message_seq_ = message_before;
            --unacked_downlink_;
            downlink_overrun_ = true;
            ++counters_.downlink_overruns;
        }
    }
}

// The welcome names the last uplink seq the server stores. Everything up to
// it is freed; the rest goes out again, in order, from there. A message whose
// seq may have reached the server (restored from disk, or sent on an earlier
// connection) keeps its seq whatever the welcome says: renumbering it could
// store it twice. Only messages that never left this process and collide with
// seqs the server holds (this device's state was lost, or another instance of
// the session sent them) are renumbered above last_uplink.
void Client::adopt_welcome() {
    const std::uint64_t last = welcome_last_uplink_;
    if (last > maybe_held_through_) {
        bool collides = false;
        OutboxEntry entry;
        for (Outbox::Iterator it = outbox_.unacked(); it.next(&entry);) {
            if (entry.seq > maybe_held_through_) {
                collides = entry.seq <= last;
                break;
            }
        }
        if (collides) {
            // Capped messages among those renumbered are the first of them;
            // the mark follows them to their new seqs.
            std::uint64_t capped_renumbered = 0;
            for (Outbox::Iterator it = outbox_.unacked(); it.next(&entry);) {
                capped_renumbered +=
                    entry.seq > maybe_held_through_ && entry.seq <= capped_through_ ? 1 : 0;
            }
            if (capped_renumbered > 0) {
                capped_through_ = last + capped_renumbered;
            }
            counters_.renumbered += outbox_.renumber_after(maybe_held_through_, last + 1);
            if (listener_ != nullptr) {
                listener_->on_renumbered();
            }
        }
    }
    if (last >= outbox_.next_seq()) {
        outbox_.skip_to(last + 1);  // never number a new message at or below what it holds
    }
    reserve_uplink_seqs();
    outbox_.ack(last);
    if (last > counters_.uplink_acked) {
        counters_.uplink_acked = last;
    }
    if (last > 0 && listener_ != nullptr) {
        listener_->on_uplink_acked(last);
    }
    outbox_.rewind();
    last_sent_uplink_ = last;
}

void Client::after_resume_read(TimeMs now) {
    if (violation_) {
        std::snprintf(detail_, sizeof detail_, "tether.v1 violation");
        fail(Failure{FailureKind::kProtocolError, net::v1::kCloseViolation}, now);
        return;
    }
    if (machine_.state() == LinkState::kOnline && downlink_replay_due(now)) {
        downlink_overrun_ = false;
        downlink_overrun_noted_ = false;
        std::snprintf(detail_, sizeof detail_, "downlink=replay_after_application_full");
        fail(Failure{FailureKind::kConnectionLost}, now);
        return;
    }
    if (machine_.state() == LinkState::kSessionResume && welcome_seen_) {
        adopt_welcome();
        feed(Event::of(EventType::kSessionResumed), now);
        return;
    }
    const bool batch_full = config_.confirm_downlink
                                ? downlink_ack_target() >= last_acked_downlink_ + config_.ack_every
                                : unacked_downlink_ >= config_.ack_every;
    if (downlink_ack_pending_ && batch_full) {
        send_downlink_ack(now);
    } else if (downlink_ack_pending_ && !downlink_ack_armed_) {
        // The first unacknowledged message starts the batching interval.
        downlink_ack_due_ = now + config_.ack_interval_ms;
        downlink_ack_armed_ = true;
    }
}

void Client::send_downlink_ack(TimeMs now) {
    if (!stream_.attached()) {
        return;
    }
    // Persisted before the server may trim: a restart resumes from here.
    persist();
    const std::uint64_t target = downlink_ack_target();
    std::uint8_t ack[net::v1::kHeaderSize];
    net::v1::write_ack(target, ack);
    if (!stream_.queue_message(net::WsOpcode::kBinary, ack, sizeof ack)) {
        return;  // the transmit buffer is full: the next service tries again
    }
    last_acked_downlink_ = target;
    unacked_downlink_ = 0;
    downlink_ack_pending_ = false;
    downlink_ack_armed_ = false;
    flush(now);
}

bool Client::queue_gap(std::uint64_t first, std::uint64_t last) {
    net::v1::Gap gap;
    gap.first = first;
    gap.last = last;
    // Below the numbering floor lie seqs an earlier run may have used: what
    // recovery did not find. Above it, only outbox evictions make holes.
    const bool unrecovered = first < numbering_floor_;
    std::snprintf(gap.reason, sizeof gap.reason, "%s", unrecovered ? skipped_reason_ : "dropped");
    char json[256];
    std::size_t length = 0;
    if (net::v1::write_gap(gap, json, sizeof json, &length) != net::v1::V1Status::kOk ||
        !stream_.queue_message(net::WsOpcode::kText, reinterpret_cast<const std::uint8_t*>(json),
                               length)) {
        return false;
    }
    ++counters_.gaps_reported;
    return true;
}

// Ages only grow along the outbox (seq order is send() order), so the
// messages whose age reached the cap are always a prefix: capped_through_
// marks its end. The first message after it is looked at every
// kAgeCheckMs, far more often than its age could wrap (2^32 ms) unnoticed.
void Client::cap_ages(TimeMs now) {
    constexpr std::uint32_t kAgeCheckMs = 60 * 1000;
    if (!resume_mode() || !config_.message_age || outbox_.empty() ||
        (age_check_armed_ && !time_reached(now, next_age_check_))) {
        return;
    }
    age_check_armed_ = true;
    next_age_check_ = now + kAgeCheckMs;
    OutboxEntry entry;
    for (Outbox::Iterator it = outbox_.unacked(); it.next(&entry);) {
        if (entry.seq <= restored_through_ || entry.seq <= capped_through_) {
            continue;
        }
        if (time_since(now, entry.pushed_at) < net::v1::kMaxAgeMs) {
            return;
        }
        capped_through_ = entry.seq;
    }
}

std::uint32_t Client::age_of(const OutboxEntry& entry, TimeMs now) const {
    if (entry.seq <= capped_through_) {
        return net::v1::kMaxAgeMs;
    }
    const std::uint32_t age = time_since(now, entry.pushed_at);
    return age < net::v1::kMaxAgeMs ? age : net::v1::kMaxAgeMs;
}

void Client::drain_outbox_v1(TimeMs now) {
    report_dropped();
    OutboxEntry entry;
    std::size_t queued = 0;
    for (Outbox::Iterator it = outbox_.unsent(); it.next(&entry);) {
        if (entry.seq > last_sent_uplink_ + 1) {
            // Seqs the outbox dropped, or that recovery could not find: name
            // the hole before the data after it.
            if (!queue_gap(last_sent_uplink_ + 1, entry.seq - 1)) {
                break;
            }
            last_sent_uplink_ = entry.seq - 1;
        }
        // The age is taken now, as this DATA is written: a retransmission
        // says how long the message has waited by then. Restored messages
        // have no known age and go without one.
        const bool aged = age_on_link_ && entry.seq > restored_through_;
        std::uint8_t header[net::v1::kAgedDataHeaderSize];
        std::size_t header_size = net::v1::kHeaderSize;
        if (aged) {
            net::v1::write_aged_data_header(entry.seq, age_of(entry, now), header);
            header_size = net::v1::kAgedDataHeaderSize;
        } else {
            net::v1::write_data_header(entry.seq, header);
        }
        if (!stream_.queue_message_parts(net::WsOpcode::kBinary, header, header_size, entry.data,
                                         entry.size)) {
            break;
        }
        last_sent_uplink_ = entry.seq;
        counters_.sent_with_age += aged ? 1 : 0;
        ++queued;
    }
    if (queued > 0) {
        outbox_.mark_sent(queued);
        counters_.messages_sent += queued;
        if (last_sent_uplink_ > maybe_held_through_) {
            maybe_held_through_ = last_sent_uplink_;
        }
    }
}

}  // namespace tether

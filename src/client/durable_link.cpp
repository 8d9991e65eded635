// SPDX-License-Identifier: MIT
// The durable link: the recovery rule and the spool's place in the data flow
// are described in include/tether/durable_link.h.
//
// Data flow of one uplink message:
//   send() -> Client::send() (seq from the outbox, reservation saved ahead)
//          -> Spool::append() (into the spool's buffer)
//   service() -> Client::service() (the message goes out as soon as it can)
//             -> Spool::flush() (the buffer is handed to the kernel every
//                iteration; synced once per fsync_interval_ms)
//   ACK from the server -> on_uplink_acked() -> Spool::ack()
//   outbox eviction -> Spool::drop_through()
#include "tether/durable_link.h"

#include <cstdio>
#include <cstring>

#include "tether/net/state_messages.h"
#include "tether/net/tether_v1.h"

namespace tether {
namespace {

constexpr std::size_t kRxSlack = 16;  // a frame header's worth beyond one message

}  // namespace

// The device-state bucket: the documents (durable_link_state.cpp carves it)
// and one outgoing state message.
std::size_t DurableLink::device_state_bytes() {
    return kStateDocuments * net::v1::kMaxStateDocument + net::v1::kMaxStateMessage;
}

const char* to_string(SpoolHealth health) {
    switch (health) {
        case SpoolHealth::kOff:
            return "off";
        case SpoolHealth::kOk:
            return "ok";
        case SpoolHealth::kDegraded:
            return "degraded";
    }
    return "unknown";
}

DurableLinkSizes DurableLinkSizes::for_config(const DurableLinkConfig& config) {
    const std::size_t message = config.client.ws.max_message_size;
    DurableLinkSizes sizes;
    sizes.outbox = config.outbox_bytes;
    sizes.rx = message + kRxSlack;
    sizes.tx = message + net::kMaxClientFrameHeader + kCoalescingRoom;
    if (config.spool) {
        // One whole record (the largest payload), the zero terminator, and
        // room to batch appends.
        sizes.spool = message + 2 * Spool::kRecordOverhead + kSpoolBatchRoom;
    }
    if (config.device_state.enabled) {
        sizes.device_state = DurableLink::device_state_bytes();
    }
    return sizes;
}

DurableLink::DurableLink(const DurableLinkConfig& config, const DurableLinkBuffers& buffers,
                         Connection& connection, NameResolver& resolver, RandomSource& random,
                         Storage* state_storage, Storage* spool_storage,
                         CredentialsProvider* credentials, DurableLinkListener* listener)
    : config_(config),
      buffers_(buffers),
      sizes_(DurableLinkSizes::for_config(config)),
      connection_(connection),
      resolver_(resolver),
      random_(random),
      state_storage_(state_storage),
      spool_storage_(spool_storage),
      credentials_(credentials),
      listener_(listener),
      masks_(random) {}

DurableLink::~DurableLink() = default;

bool DurableLink::MasksFrom::fill_masks(std::uint8_t* out, std::size_t size) {
    return random_.fill_random(out, size);
}

Status DurableLink::open(RecoveryReport* report) {
    RecoveryReport local;
    RecoveryReport& found = report != nullptr ? *report : local;
    found = RecoveryReport{};
    if (client_) {
        std::snprintf(error_, sizeof error_, "open() was called twice");
        return Status::kInvalidArgument;
    }
    if (config_.spool && (spool_storage_ == nullptr || buffers_.spool == nullptr)) {
        std::snprintf(error_, sizeof error_, "a spool needs its storage and buffer");
        return Status::kInvalidArgument;
    }
    if (config_.device_state.enabled && !config_.client.reconnect.resume_protocol) {
        std::snprintf(error_, sizeof error_, "device state needs the tether.v1 resume protocol");
        return Status::kInvalidArgument;
    }

    // 1. The persisted counters, and with them the seq reservation.
    if (state_storage_ != nullptr) {
        record_.emplace(*state_storage_);
        if (record_->load(&state_, &found.state_source) != Status::kOk) {
            found.state_read_failed = true;
            storage_error_ = state_storage_->last_error();
            ++counters_.state_failures;
            if (listener_ != nullptr) {
                listener_->on_storage(StorageEvent{StorageEvent::What::kStateRecord, true,
                                                   storage_error_,
                                                   "the state record could not be read or "
                                                   "made durable; seqs that collide with the "
                                                   "server's are renumbered"});
            }
        }
    }
    found.state = state_;
    const std::uint64_t reservation = state_.next_uplink_seq;

    // 1b. The device-state record: the desired version the hello names.
    if (open_device_state() != Status::kOk) {
        return Status::kInvalidArgument;
    }
    config_.client.device_state = config_.device_state.enabled;
    ClientBuffers client_buffers{buffers_.outbox, sizes_.outbox, buffers_.rx,
                                 sizes_.rx,       buffers_.tx,   sizes_.tx};
    client_buffers.state_document = parse_;
    client_buffers.state_document_size = parse_ != nullptr ? net::v1::kMaxStateDocument : 0;
    client_.emplace(config_.client, client_buffers, connection_, resolver_, random_, masks_,
                    static_cast<ClientListener*>(this), credentials_, record_ ? &*record_ : nullptr,
                    record_ ? &state_ : nullptr);
    if (client_->init() != Status::kOk) {
        std::snprintf(error_, sizeof error_, "%s", client_->config_error());
        return Status::kInvalidArgument;
    }
    client_->set_desired_version(data_.desired_version);

    // 2. What the spool kept, under its own seqs.
    std::uint64_t known_highest = reservation > 0 ? reservation - 1 : 0;
    if (config_.spool) {
        recover_spool(&found);
        if (found.spool.highest_seq + 1 > known_highest + 1) {
            known_highest = found.spool.highest_seq;
        }
    }

    // 3. New messages never reuse a seq an earlier run may have used.
    found.continue_at = known_highest + 1;
    const std::uint64_t last_known = found.last_restored != 0
                                         ? found.last_restored
                                         : (config_.spool ? found.spool.highest_seq : 0);
    if (found.continue_at > last_known + 1 && (found.restored > 0 || config_.spool)) {
        found.unrecovered = SeqRange{last_known + 1, found.continue_at - 1};
    }
    client_->continue_numbering_at(found.continue_at,
                                   config_.spool ? "unrecovered" : "not_persisted");
    if (tracks_settled() && spool_recovered_) {
        // What the spool marks handed over and no run settled: the end of an
        // earlier run that was not a clean stop (docs/ARCHITECTURE.md, Plain
        // WebSocket delivery). Reported once; saved as settled from now on.
        settled_ = state_.uplink_settled_seq;
        const std::uint64_t handed = found.spool.acked_through;
        if (handed > settled_) {
            found.in_doubt = SeqRange{settled_ + 1, handed};
            settled_ = handed;
        }
    }
    dropped_seen_ = client_->outbox().counters().dropped;
    return Status::kOk;
}

void DurableLink::restore_visit(void* context, std::uint64_t seq, const std::uint8_t* data,
                                std::size_t size) {
    auto* link = static_cast<DurableLink*>(context);
    RecoveryReport& found = *link->recovering_;
    const std::uint64_t dropped_before = link->own_client().outbox().counters().dropped;
    const Status status = link->own_client().restore(seq, data, size);
    if (status == Status::kOk) {
        if (found.first_restored == 0) {
            found.first_restored = seq;
        }
        found.last_restored = seq;
        ++found.restored;
        const std::uint64_t evicted =
            link->own_client().outbox().counters().dropped - dropped_before;
        found.evicted += static_cast<std::size_t>(evicted);
        found.restored -= static_cast<std::size_t>(evicted);
        return;
    }
    if (status == Status::kTooLarge) {
        ++found.too_large;  // its seq becomes part of a gap: the next restored seq is higher
        return;
    }
    ++link->restore_errors_;
}

void DurableLink::count_late(void* context, std::uint64_t seq, const std::uint8_t* data,
                             std::size_t size) {
    (void)data;
    (void)size;
    auto* link = static_cast<DurableLink*>(context);
    if (link->late_count_ == 0) {
        link->late_found_.first = seq;
    }
    link->late_found_.last = seq;
    ++link->late_count_;
}

void DurableLink::recover_spool(RecoveryReport* report) {
    spool_.emplace(*spool_storage_, buffers_.spool, sizes_.spool, config_.spool_config);
    report->spool_used = true;
    recovering_ = report;
    const Status status = spool_->recover(restore_visit, this, &report->spool);
    recovering_ = nullptr;
    if (status != Status::kOk) {
        report->spool_failed = true;
        const bool retriable = status == Status::kIoError;
        std::snprintf(recovery_problem_, sizeof recovery_problem_,
                      retriable ? "recovery: %s; running memory-only, the spool is tried again"
                                : "recovery: %s; running memory-only for this run (the spool "
                                  "file is left as it is)",
                      spool_->error());
        spool_failed(status, recovery_problem_);
        spool_retry_armed_ = retriable;
        return;
    }
    spool_recovered_ = true;
    spool_health_ = SpoolHealth::kOk;
    syncs_seen_ = spool_->counters().syncs;
    const Client& c = client();
    if (c.outbox().counters().dropped > 0) {
        // The outbox is smaller than what was recovered: the oldest are gone
        // (reported to the server as a gap); the spool must forget them too.
        const Status dropped = spool_->drop_through(c.outbox().oldest_seq() - 1);
        if (dropped != Status::kOk) {
            spool_failed(dropped, "running memory-only; the spool is tried again");
        }
    }
}

void DurableLink::start(TimeMs now) {
    last_now_ = now;
    own_client().start(now);
}

void DurableLink::stop(TimeMs now, std::uint16_t code) {
    stop_requested_ = true;
    own_client().stop(now, code);
    report_drops(now, true);
}

Status DurableLink::shutdown() {
    Status result = Status::kOk;
    if (spool_ && spool_health_ == SpoolHealth::kOk) {
        const Status synced = spool_->sync();
        if (synced != Status::kOk) {
            spool_failed(synced, "what was not synced may be lost in a power cut");
            result = synced;
        }
    }
    if (record_) {
        // The exact numbering: the next run continues right after the last
        // seq used, so a clean stop leaves no gap.
        state_.next_uplink_seq = client().outbox().next_seq();
        // A clean stop was asked for: the next run is a deliberate start, not
        // a crash loop, and connects at once. Without stop() the counter is
        // the machine's, as a crash would have left it.
        state_.reconnect_attempts = stop_requested_ ? 0u : client().machine().attempts();
        if (tracks_settled() && settled_ > state_.uplink_settled_seq) {
            state_.uplink_settled_seq = settled_;
        }
        if (config_.client.reconnect.resume_protocol) {
            state_.last_delivered_downlink_seq = client().downlink_confirmed();
        }
        if (record_->save(state_) != Status::kOk) {
            on_persist(Status::kIoError);
            result = Status::kIoError;
        }
    }
    if (state_record_ && state_dirty_ && !state_save()) {
        result = Status::kIoError;
    }
    return result;
}

std::size_t DurableLink::max_payload() const {
    return client().max_payload();
}

Status DurableLink::send(TimeMs now, const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                         net::WsOpcode type) {
    std::uint64_t assigned = 0;
    const Status status = own_client().send(now, data, size, &assigned, type);
    if (seq != nullptr) {
        *seq = assigned;
    }
    if (status == Status::kTooLarge) {
        ++counters_.refused_too_large;
        if (!refused_reported_ && listener_ != nullptr) {
            refused_reported_ = true;
            listener_->on_refused(size, client().max_payload());
        }
        return status;
    }
    if (status == Status::kNoSpace) {
        ++counters_.refused_full;
        return status;
    }
    if (status != Status::kOk || !spool_) {
        return status;
    }
    if (spool_health_ != SpoolHealth::kOk) {
        ++counters_.memory_only;
        return status;
    }
    const std::uint64_t dropped = client().outbox().counters().dropped;
    if (dropped != dropped_seen_) {
        dropped_seen_ = dropped;
        const Status evicted = spool_->drop_through(client().outbox().oldest_seq() - 1);
        if (evicted != Status::kOk) {
            spool_failed(evicted, "running memory-only; the spool is tried again");
            ++counters_.memory_only;
            return status;
        }
    }
    const Status appended = spool_->append(assigned, data, size);
    if (appended != Status::kOk) {
        spool_failed(appended, "running memory-only; the spool is tried again");
        ++counters_.memory_only;
    }
    return status;
}

void DurableLink::commit() {
    spool_work(last_now_);
}

Status DurableLink::sync_spool() {
    spool_work(last_now_);
    if (!spool_) {
        return Status::kOk;
    }
    if (spool_health_ != SpoolHealth::kOk) {
        return Status::kIoError;  // memory only, and already reported
    }
    const Status synced = spool_->sync();
    if (synced != Status::kOk) {
        spool_failed(synced, "what was not synced may be lost in a power cut");
    }
    return synced;
}

void DurableLink::confirm_downlink(std::uint64_t seq) {
    own_client().confirm_downlink(seq);
}

// A failure of the spool: reported once, then the spool is left alone until
// the retry time. The messages stay in the outbox, so nothing is lost while
// the link is up; a crash while degraded loses what the disk never got, and
// the next run reports those seqs as a gap.
void DurableLink::spool_failed(Status status, const char* action) {
    (void)status;
    ++counters_.spool_failures;
    if (spool_health_ == SpoolHealth::kDegraded) {
        return;
    }
    spool_health_ = SpoolHealth::kDegraded;
    storage_error_ = spool_storage_ != nullptr ? spool_storage_->last_error() : 0;
    spool_retry_at_ = last_now_ + kSpoolRetryMs;
    spool_retry_armed_ = true;
    if (listener_ != nullptr) {
        listener_->on_storage(
            StorageEvent{StorageEvent::What::kSpool, true, storage_error_, action});
    }
}

// The spool is tried again: recovered state is what the spool already holds
// on disk; the messages accepted since it failed (still in the outbox) are
// appended after it, in order, then the server's acknowledgement.
void DurableLink::try_spool_again(TimeMs now) {
    spool_retry_at_ = now + kSpoolRetryMs;
    if (!spool_recovered_) {
        // Recovery failed at start, and new messages have been numbered since:
        // what an earlier run left in the spool can no longer go back under
        // its seqs ahead of them. It is counted and reported with its seqs.
        late_found_ = SeqRange{0, 0};
        late_count_ = 0;
        if (spool_->recover(count_late, this, nullptr) != Status::kOk) {
            return;
        }
        spool_recovered_ = true;
    }
    if (!append_unspooled()) {
        return;
    }
    std::uint64_t acked = client().counters().uplink_acked;
    if (client().handed_over_seq() > acked) {
        acked = client().handed_over_seq();  // plain at-most-once: gone once handed over
    }
    if ((acked > 0 && spool_->ack(acked) != Status::kOk) || spool_->sync() != Status::kOk) {
        return;
    }
    spool_health_ = SpoolHealth::kOk;
    spool_retry_armed_ = false;
    syncs_seen_ = spool_->counters().syncs;
    synced_at_ = now;
    dropped_seen_ = client().outbox().counters().dropped;
    ++counters_.spool_recoveries;
    if (listener_ != nullptr) {
        char action[160];
        if (late_count_ > 0) {
            counters_.not_replayed += late_count_;
            std::snprintf(action, sizeof action,
                          "messages are spooled again; %llu of an earlier run, seqs %llu..%llu, "
                          "were found only now and are not sent",
                          static_cast<unsigned long long>(late_count_),
                          static_cast<unsigned long long>(late_found_.first),
                          static_cast<unsigned long long>(late_found_.last));
            late_count_ = 0;
        } else {
            std::snprintf(action, sizeof action, "messages are spooled again");
        }
        listener_->on_storage(StorageEvent{StorageEvent::What::kSpool, false, 0, action});
    }
}

// Appends, in order, every message the outbox holds above the spool's highest
// seq: those accepted while the spool failed, or renumbered by a welcome.
bool DurableLink::append_unspooled() {
    const std::uint64_t highest = spool_->highest_seq();
    OutboxEntry entry;
    for (Outbox::Iterator it = client().outbox().unacked(); it.next(&entry);) {
        if (entry.seq > highest &&
            spool_->append(entry.seq, entry.data, entry.size) != Status::kOk) {
            return false;
        }
    }
    return true;
}

// Renumbered messages are new seqs to the spool, which still holds them under
// the old ones (which the welcome's acknowledgement is about to free).
void DurableLink::on_renumbered() {
    if (spool_ && spool_health_ == SpoolHealth::kOk && !append_unspooled()) {
        spool_failed(Status::kIoError, "running memory-only; the spool is tried again");
    }
}

void DurableLink::spool_work(TimeMs now) {
    if (!spool_) {
        return;
    }
    if (spool_health_ == SpoolHealth::kDegraded) {
        if (spool_retry_armed_ && time_reached(now, spool_retry_at_)) {
            try_spool_again(now);
        }
        return;
    }
    const Status flushed = spool_->flush(now);
    if (flushed != Status::kOk) {
        spool_failed(flushed, "running memory-only; the spool is tried again");
        return;
    }
    if (spool_->counters().syncs != syncs_seen_) {
        syncs_seen_ = spool_->counters().syncs;
        synced_at_ = now;
    }
}

void DurableLink::service(TimeMs now) {
    last_now_ = now;
    if (state_retry_armed_ && time_reached(now, state_retry_at_)) {
        state_retry_at_ = now + kSpoolRetryMs;
        own_client().save_state();  // on_persist(kOk) disarms it
    }
    own_client().service(now);
    state_work(now);
    spool_work(now);
    save_settled(now);
    report_drops(now, false);
}

std::size_t DurableLink::poll_requests(PollRequest* out, std::size_t max) const {
    return client().poll_requests(out, max);
}

bool DurableLink::next_deadline(TimeMs* at) const {
    bool any = client().next_deadline(at);
    auto consider = [&](TimeMs when) {
        *at = any ? time_earliest(*at, when) : when;
        any = true;
    };
    if (spool_ && spool_health_ == SpoolHealth::kOk && spool_->has_unsynced()) {
        // flush() syncs once fsync_interval_ms has passed since the last sync.
        consider(syncs_seen_ == 0 ? last_now_
                                  : synced_at_ + config_.spool_config.fsync_interval_ms);
    }
    if (spool_retry_armed_ && spool_health_ == SpoolHealth::kDegraded) {
        consider(spool_retry_at_);
    }
    if (state_retry_armed_) {
        consider(state_retry_at_);
    }
    if (pending_drop_count_ > 0) {
        consider(drop_report_due_);
    }
    if (tracks_settled() && settled_ > state_.uplink_settled_seq) {
        consider(settled_save_armed_ ? settled_save_at_ : last_now_);
    }
    if (state_record_) {
        if (state_kick_ || answer_pending_) {
            consider(last_now_);  // work that service() does at once
        }
        if (state_dirty_ && state_failed_) {
            consider(state_save_retry_at_);
        }
        if (resend_armed_) {
            consider(resend_at_);
        }
    }
    return any;
}

bool DurableLink::has_buffered_input() const {
    return client().has_buffered_input();
}

void DurableLink::report_drops(TimeMs now, bool force) {
    if (pending_drop_count_ == 0 || (!force && !time_reached(now, drop_report_due_))) {
        return;
    }
    if (listener_ != nullptr) {
        listener_->on_gap(false, pending_drop_.first, pending_drop_.last);
    }
    pending_drop_count_ = 0;
}

void DurableLink::on_state(const ClientEvent& event) {
    if (event.state == LinkState::kOnline && state_record_) {
        // A new connection: the report in flight goes out again, same id and base.
        in_flight_sent_ = false;
        state_kick_ = true;
    }
    if (listener_ != nullptr) {
        listener_->on_state(event);
    }
}

void DurableLink::on_message(net::WsOpcode type, const std::uint8_t* data, std::size_t size) {
    if (listener_ != nullptr) {
        listener_->on_message(type, data, size);
    }
}

void DurableLink::on_downlink_seq(std::uint64_t seq) {
    if (listener_ != nullptr) {
        listener_->on_downlink_seq(seq);
    }
}

// Uplink drops arrive one range per drain; under a flood that is one per
// message. They are merged here and reported at most once per kDropReportMs.
void DurableLink::on_gap(bool downlink, std::uint64_t first, std::uint64_t last) {
    if (downlink) {
        if (listener_ != nullptr) {
            listener_->on_gap(true, first, last);
        }
        return;
    }
    if (pending_drop_count_ > 0 && first != pending_drop_.last + 1) {
        report_drops(last_now_, true);
    }
    if (pending_drop_count_ == 0) {
        pending_drop_.first = first;
        drop_report_due_ = last_now_ + kDropReportMs;
    }
    pending_drop_.last = last;
    pending_drop_count_ += last - first + 1;
}

bool DurableLink::tracks_settled() const {
    return config_.spool && !config_.client.reconnect.resume_protocol &&
           config_.client.delivery == Delivery::kAtMostOnce && record_.has_value();
}

// At most one save a second while confirmations move (each save is a sync);
// shutdown() saves the last.
void DurableLink::save_settled(TimeMs now) {
    if (!tracks_settled() || settled_ <= state_.uplink_settled_seq ||
        (settled_save_armed_ && !time_reached(now, settled_save_at_))) {
        return;
    }
    state_.uplink_settled_seq = settled_;
    settled_save_at_ = now + kSettledSaveMs;
    settled_save_armed_ = true;
    if (record_->save(state_) != Status::kOk) {
        on_persist(Status::kIoError);
    }
}

void DurableLink::on_uplink_acked(std::uint64_t seq) {
    if (tracks_settled() && seq > settled_) {
        settled_ = seq;
    }
    if (spool_ && spool_health_ == SpoolHealth::kOk) {
        const Status acked = spool_->ack(seq);
        if (acked != Status::kOk) {
            spool_failed(acked, "running memory-only; the spool is tried again");
        }
    }
    if (listener_ != nullptr) {
        listener_->on_uplink_acked(seq);
    }
}

// Plain WebSocket, at-most-once: the spool's watermark moves past these
// messages, and the record reaches the kernel, before the socket write can
// give any of them to the peer; so a killed process never sends them again.
void DurableLink::on_uplink_handover(std::uint64_t seq) {
    if (spool_ && spool_health_ == SpoolHealth::kOk) {
        Status status = spool_->ack(seq);
        if (status == Status::kOk) {
            status = spool_->flush(last_now_);
        }
        if (status != Status::kOk) {
            spool_failed(status, "running memory-only; the spool is tried again");
        } else if (spool_->counters().syncs != syncs_seen_) {
            syncs_seen_ = spool_->counters().syncs;
            synced_at_ = last_now_;
        }
    }
    if (listener_ != nullptr) {
        listener_->on_uplink_handover(seq);
    }
}

void DurableLink::on_in_doubt(std::uint64_t first, std::uint64_t last, std::uint64_t count,
                              bool resent) {
    if (tracks_settled() && !resent && last > settled_) {
        settled_ = last;  // reported now: a restart need not report it again
    }
    if (listener_ != nullptr) {
        listener_->on_in_doubt(first, last, count, resent);
    }
}

bool DurableLink::downlink_can_accept(std::size_t size) {
    return listener_ == nullptr || listener_->downlink_can_accept(size);
}

void DurableLink::on_persist(Status status) {
    const bool failed = status != Status::kOk;
    if (failed) {
        ++counters_.state_failures;
        if (!state_retry_armed_) {
            state_retry_armed_ = true;
            state_retry_at_ = last_now_ + kSpoolRetryMs;
        }
    } else {
        state_retry_armed_ = false;
    }
    const int error = failed && state_storage_ != nullptr ? state_storage_->last_error() : 0;
    if (failed) {
        storage_error_ = error;
    }
    if (listener_ != nullptr) {
        listener_->on_storage(StorageEvent{
            StorageEvent::What::kStateRecord, failed, error,
            failed ? "seq reservation and counters are not saved (tried again every 5 s); a "
                     "restart renumbers what collides with the server"
                   : "the state record is saved again"});
    }
}

}  // namespace tether

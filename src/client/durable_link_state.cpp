// SPDX-License-Identifier: MIT
// The device side of the device-state extension (docs/PROTOCOL.md section 9)
// inside the durable link.
//
// Documents (compact JSON, kMaxStateDocument bytes each, all carved from
// DurableLinkBuffers::device_state in this order):
//   data_.desired         the desired document the application applied (persisted)
//   data_.reported        the reported document the server acknowledged (persisted)
//   data_.local           the device's reported document (persisted)
//   data_.in_flight_body  the report in flight (persisted)
//   received_             the newest desired document received (>= applied)
//   delivered_            the document of the change on_desired() handed over
//   increment_            the patch of that change, when it is one increment
//   pending_patch_        the one report made while another was in flight
//   merge_                scratch for merge results
//   parse_                the client parses incoming documents into it
// and one outgoing message (message_, kMaxStateMessage bytes).
//
// Invariants:
//  - Nothing is sent while data_ is not saved (state_dirty_): "applied" only
//    after the applied version is durable, a report only once it is durable
//    as the one in flight.
//  - Incoming messages are handled inside the stream's read (the client calls
//    on_state_message()): they only update documents and versions. The
//    application hears of them (on_desired, on_report_answer) from
//    state_work(), which service() runs after the client's read returned, so
//    a callback may call anything on the link.
//  - received_version_ >= the version delivered >= data_.desired_version in
//    the normal case; a snapshot may move received_ anywhere (the server is
//    the authority), and a change is delivered whenever received_version_
//    differs from the applied one and the application holds none.
#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "tether/durable_link.h"
#include "tether/net/json_document.h"
#include "tether/net/state_messages.h"

namespace tether {
namespace {

constexpr char kEmptyObject[] = "{}";

void copy_document(StoredDocument* to, const char* data, std::size_t size) {
    if (size == 0) {
        data = kEmptyObject;
        size = 2;
    }
    if (to->data != data) {
        std::memmove(to->data, data, size);
    }
    to->size = size;
}

void copy_document(StoredDocument* to, const StoredDocument& from) {
    copy_document(to, from.data, from.size);
}

bool same_document(const StoredDocument& a, const StoredDocument& b) {
    return a.size == b.size && std::memcmp(a.data, b.data, a.size) == 0;
}

}  // namespace

Status DurableLink::open_device_state() {
    if (!config_.device_state.enabled) {
        return Status::kOk;
    }
    if (device_state_storage_ == nullptr || buffers_.device_state == nullptr) {
        std::snprintf(error_, sizeof error_,
                      "device state needs its storage (set_device_state_storage) and buffer");
        return Status::kInvalidArgument;
    }
    if (!config_.client.reconnect.resume_protocol) {
        std::snprintf(error_, sizeof error_, "device state needs the tether.v1 resume protocol");
        return Status::kInvalidArgument;
    }
    if (config_.client.ws.max_message_size < net::v1::kMaxStateMessage) {
        std::snprintf(error_, sizeof error_,
                      "device state needs a max message size of at least %zu bytes (the largest "
                      "state message); it is %zu",
                      net::v1::kMaxStateMessage, config_.client.ws.max_message_size);
        return Status::kInvalidArgument;
    }
    char* at = reinterpret_cast<char*>(buffers_.device_state);
    StoredDocument* documents[] = {&data_.desired,        &data_.reported, &data_.local,
                                   &data_.in_flight_body, &received_,      &delivered_,
                                   &increment_,           &pending_patch_};
    for (StoredDocument* document : documents) {
        document->data = at;
        document->size = 0;
        at += net::v1::kMaxStateDocument;
    }
    merge_ = at;
    at += net::v1::kMaxStateDocument;
    parse_ = at;
    at += net::v1::kMaxStateDocument;
    message_ = at;
    static_assert(kStateDocuments == sizeof documents / sizeof documents[0] + 2,
                  "every document has its place in the bucket");

    state_record_.emplace(*device_state_storage_, net::v1::kMaxStateDocument);
    LoadSource source = LoadSource::kDefaults;
    if (state_record_->load(&data_, &source) != Status::kOk) {
        ++state_view_.state_failures;
        state_failed_ = true;
        state_save_retry_at_ = last_now_ + kSpoolRetryMs;
        if (listener_ != nullptr) {
            listener_->on_storage(StorageEvent{
                StorageEvent::What::kDeviceState, true, device_state_storage_->last_error(),
                "the device state could not be read or made durable; the hello names the "
                "desired version found (0: none), so the server sends what is missing"});
        }
    }
    for (StoredDocument* document : {&data_.desired, &data_.reported, &data_.local}) {
        if (document->size == 0) {
            copy_document(document, kEmptyObject, 2);
        }
    }
    copy_document(&received_, data_.desired);
    received_version_ = data_.desired_version;
    local_in_step_ = !data_.in_flight && same_document(data_.local, data_.reported);
    state_view_.enabled = true;
    state_kick_ = data_.in_flight || data_.report_wanted;
    return Status::kOk;
}

bool DurableLink::state_save() {
    state_dirty_ = true;
    if (state_record_->save(data_) != Status::kOk) {
        ++state_view_.state_failures;
        state_save_retry_at_ = last_now_ + kSpoolRetryMs;
        if (!state_failed_) {
            state_failed_ = true;
            if (listener_ != nullptr) {
                listener_->on_storage(StorageEvent{
                    StorageEvent::What::kDeviceState, true, device_state_storage_->last_error(),
                    "the device state is kept in memory and nothing of it is sent until it is "
                    "saved (tried again every 5 s)"});
            }
        }
        return false;
    }
    state_dirty_ = false;
    if (client_) {
        own_client().set_desired_version(data_.desired_version);
    }
    if (state_failed_) {
        state_failed_ = false;
        if (listener_ != nullptr) {
            listener_->on_storage(StorageEvent{StorageEvent::What::kDeviceState, false, 0,
                                               "the device state is saved again"});
        }
    }
    state_kick_ = true;
    return true;
}

Status DurableLink::desired_applied(std::uint64_t version) {
    if (!state_record_ || !awaiting_applied_ || version != delivered_version_) {
        return Status::kInvalidArgument;
    }
    data_.desired_version = version;
    copy_document(&data_.desired, delivered_);
    awaiting_applied_ = false;
    applied_unsent_ = true;
    state_kick_ = true;
    return state_save() ? Status::kOk : Status::kIoError;
}

const char* DurableLink::desired_document(std::size_t* size) const {
    if (!state_record_) {
        *size = 2;
        return kEmptyObject;
    }
    *size = data_.desired.size;
    return data_.desired.data;
}

const char* DurableLink::reported_document(std::size_t* size) const {
    if (!state_record_) {
        *size = 2;
        return kEmptyObject;
    }
    *size = data_.local.size;
    return data_.local.data;
}

bool DurableLink::state_local_matches_acked() const {
    return same_document(data_.local, data_.reported);
}

Status DurableLink::report(const char* json, std::size_t size, bool whole) {
    if (!state_record_ || json == nullptr) {
        return Status::kInvalidArgument;
    }
    // The compact input goes to message_ (free outside state_send()), the
    // new local document to merge_.
    std::size_t length = 0;
    net::v1::V1Status status =
        net::v1::compact_object(json, size, message_, net::v1::kMaxStateMessage, &length);
    if (status == net::v1::V1Status::kBufferTooSmall ||
        (status == net::v1::V1Status::kOk && length > net::v1::kMaxStateDocument)) {
        return Status::kTooLarge;
    }
    if (status != net::v1::V1Status::kOk) {
        return Status::kInvalidArgument;
    }
    std::size_t merged = length;
    if (whole) {
        std::memcpy(merge_, message_, length);
    } else {
        status = net::v1::apply_merge_patch(data_.local.data, data_.local.size, message_, length,
                                            merge_, net::v1::kMaxStateDocument, &merged);
        if (status == net::v1::V1Status::kBufferTooSmall) {
            return Status::kTooLarge;
        }
        if (status != net::v1::V1Status::kOk) {
            return Status::kInvalidArgument;
        }
    }
    // Nothing new: the server has (or is about to get) exactly this document.
    const bool unchanged =
        merged == data_.local.size && std::memcmp(merge_, data_.local.data, merged) == 0;
    const bool in_step = data_.in_flight ? local_in_step_ : state_local_matches_acked();
    if (unchanged && in_step && !data_.report_wanted) {
        return Status::kOk;
    }
    // A single patch onto a document the server will hold as it is goes as
    // that patch; anything else (several reports, a whole one, a local
    // document that drifted from the server's) goes as the whole document.
    pending_patch_valid_ = !whole && !data_.report_wanted && in_step;
    if (pending_patch_valid_) {
        copy_document(&pending_patch_, message_, length);
    }
    copy_document(&data_.local, merge_, merged);
    data_.report_wanted = true;
    local_in_step_ = false;
    (void)state_build_report();  // without entropy now, state_work() tries again
    state_kick_ = true;
    return state_save() ? Status::kOk : Status::kIoError;
}

// Makes the wanted report the one in flight (not saved yet: the caller saves).
bool DurableLink::state_build_report() {
    if (data_.in_flight || !data_.report_wanted) {
        return false;
    }
    std::uint8_t raw[DeviceStateData::kReportIdLength / 2];
    if (!random_.fill_random(raw, sizeof raw)) {
        return false;  // no id without entropy: the report waits
    }
    static constexpr char kHex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < sizeof raw; ++i) {
        data_.in_flight_id[2 * i] = kHex[raw[i] >> 4];
        data_.in_flight_id[2 * i + 1] = kHex[raw[i] & 0x0F];
    }
    data_.in_flight_id[DeviceStateData::kReportIdLength] = '\0';
    data_.in_flight_whole = !pending_patch_valid_;
    copy_document(&data_.in_flight_body, pending_patch_valid_ ? pending_patch_ : data_.local);
    data_.in_flight_base = data_.reported_version;
    data_.in_flight = true;
    data_.report_wanted = false;
    pending_patch_valid_ = false;
    local_in_step_ = true;  // once it is accepted, the server holds data_.local
    in_flight_sent_ = false;
    resend_armed_ = false;
    state_dirty_ = true;
    return true;
}

bool DurableLink::on_state_message(const net::v1::StateMessage& message, const char* document,
                                   std::size_t document_size) {
    if (!state_record_) {
        return false;
    }
    switch (message.type) {
        case net::v1::StateType::kDesired:
            return on_desired_message(message, document, document_size);
        case net::v1::StateType::kReportOk:
        case net::v1::StateType::kReportRefused:
            return on_report_answer_message(message, document, document_size);
        case net::v1::StateType::kApplied:
        case net::v1::StateType::kReport:
            break;
    }
    return false;  // a device's message, from the server
}

// PROTOCOL 9.2 rule 4, against the newest version received (the application
// may not have applied it yet: that one is then folded).
bool DurableLink::on_desired_message(const net::v1::StateMessage& message, const char* document,
                                     std::size_t size) {
    if (message.whole) {
        if (message.version == received_version_) {
            return true;  // a duplicate across a reconnect
        }
        copy_document(&received_, document, size);
        received_version_ = message.version;
        increment_valid_ = false;
        ++state_view_.desired_snapshots;
        state_kick_ = true;
        return true;
    }
    if (message.version <= received_version_) {
        return true;  // applied (or folded) already
    }
    if (message.version != received_version_ + 1) {
        return false;  // skips a version: 4002, the next hello starts again from ours
    }
    std::size_t merged = 0;
    if (net::v1::apply_merge_patch(received_.data, received_.size, document, size, merge_,
                                   net::v1::kMaxStateDocument, &merged) != net::v1::V1Status::kOk) {
        return false;  // a document beyond the bound: the server broke it
    }
    // Delivered as this increment only when the application holds the
    // version right before it; otherwise it is folded into the next snapshot.
    increment_valid_ = !awaiting_applied_ && received_version_ == data_.desired_version;
    if (increment_valid_) {
        copy_document(&increment_, document, size);
    }
    copy_document(&received_, merge_, merged);
    received_version_ = message.version;
    ++state_view_.desired_increments;
    state_kick_ = true;
    return true;
}

bool DurableLink::on_report_answer_message(const net::v1::StateMessage& message,
                                           const char* document, std::size_t size) {
    if (!data_.in_flight || std::strcmp(message.id, data_.in_flight_id) != 0) {
        return true;  // not the report in flight (an answer to one already settled)
    }
    answer_ = ReportAnswer{};
    answer_.version = message.version;
    answer_reason_[0] = '\0';
    answer_.reason = answer_reason_;
    if (message.type == net::v1::StateType::kReportOk) {
        if (data_.in_flight_whole) {
            copy_document(&data_.reported, data_.in_flight_body);
        } else {
            std::size_t merged = 0;
            if (net::v1::apply_merge_patch(data_.reported.data, data_.reported.size,
                                           data_.in_flight_body.data, data_.in_flight_body.size,
                                           merge_, net::v1::kMaxStateDocument,
                                           &merged) == net::v1::V1Status::kOk) {
                copy_document(&data_.reported, merge_, merged);
            } else {
                local_in_step_ = false;  // cannot follow the server: the next report is whole
            }
        }
        data_.reported_version = message.version;
        data_.in_flight = false;
        // The device's document still differs (a patch that did not bring the
        // server to it): the whole document goes next. After a whole report
        // they agree unless a report is wanted anyway, so this cannot loop.
        if (!state_local_matches_acked()) {
            data_.report_wanted = true;
        }
        answer_.accepted = true;
        ++state_view_.reports_accepted;
    } else {
        std::snprintf(answer_reason_, sizeof answer_reason_, "%s", message.reason);
        ++state_view_.reports_refused;
        if (std::strcmp(message.reason, net::v1::kRefusedUnavailable) == 0) {
            // The store failed: the same report goes again later.
            resend_armed_ = true;
            resend_at_ = last_now_ + kSpoolRetryMs;
            in_flight_sent_ = false;
        } else if (std::strcmp(message.reason, net::v1::kRefusedStale) == 0) {
            // Another writer was first: its document is the server's truth
            // now; the application decides (its next report() goes out based
            // on this version). Nothing is resent on its own.
            data_.reported_version = message.version;
            copy_document(&data_.reported, document, size);
            data_.in_flight = false;
            data_.report_wanted = false;
            pending_patch_valid_ = false;
            local_in_step_ = state_local_matches_acked();
            answer_.document = data_.reported.data;
            answer_.document_size = data_.reported.size;
        } else {
            // too_large, invalid: resending it cannot help.
            data_.in_flight = false;
            pending_patch_valid_ = false;
            local_in_step_ = false;
        }
    }
    state_dirty_ = true;  // saved by state_work(), before anything more is sent
    answer_pending_ = true;
    state_kick_ = true;
    return true;
}

void DurableLink::state_deliver() {
    if (awaiting_applied_ || state_dirty_ || received_version_ == data_.desired_version) {
        return;
    }
    DesiredChange change;
    change.version = received_version_;
    change.snapshot = !(increment_valid_ && received_version_ == data_.desired_version + 1);
    copy_document(&delivered_, received_);
    delivered_version_ = received_version_;
    awaiting_applied_ = true;
    increment_valid_ = false;
    if (!change.snapshot) {
        change.patch = increment_.data;
        change.patch_size = increment_.size;
    }
    change.document = delivered_.data;
    change.document_size = delivered_.size;
    if (listener_ != nullptr) {
        listener_->on_desired(change);
    }
}

void DurableLink::state_send(TimeMs now) {
    if (state_dirty_ || !client().state_negotiated()) {
        return;
    }
    std::size_t length = 0;
    if (applied_unsent_) {
        // (A version 0 cannot be written, and is nothing to tell.)
        const bool written =
            net::v1::write_applied(data_.desired_version, message_, net::v1::kMaxStateMessage,
                                   &length) == net::v1::V1Status::kOk;
        if (written && !own_client().queue_state_message(now, message_, length)) {
            return;  // no room now: the next service() tries again
        }
        applied_unsent_ = false;
    }
    if (!data_.in_flight && data_.report_wanted) {
        if (!state_build_report() || !state_save()) {
            return;
        }
    }
    if (!data_.in_flight || in_flight_sent_ || (resend_armed_ && !time_reached(now, resend_at_))) {
        return;
    }
    if (net::v1::write_report(data_.in_flight_id, data_.in_flight_base, data_.in_flight_whole,
                              data_.in_flight_body.data, data_.in_flight_body.size, message_,
                              net::v1::kMaxStateMessage, &length) != net::v1::V1Status::kOk) {
        // Cannot happen for what report() accepted; never leave it stuck.
        data_.in_flight = false;
        state_dirty_ = true;
        return;
    }
    if (own_client().queue_state_message(now, message_, length)) {
        in_flight_sent_ = true;
        resend_armed_ = false;
    }
}

void DurableLink::state_work(TimeMs now) {
    if (!state_record_) {
        return;
    }
    state_kick_ = false;
    if (state_dirty_ && (!state_failed_ || time_reached(now, state_save_retry_at_))) {
        const bool saved = state_save();
        // A failure is counted in state_failures, reported once through
        // on_storage() and tried again at state_save_retry_at_; what must not
        // go out unsaved checks state_dirty_ itself (state_send()).
        static_cast<void>(saved);
    }
    if (answer_pending_) {
        answer_pending_ = false;
        if (listener_ != nullptr) {
            listener_->on_report_answer(answer_);
        }
    }
    state_deliver();
    state_send(now);
}

DeviceStateView DurableLink::device_state() const {
    DeviceStateView view = state_view_;
    if (!state_record_) {
        return view;
    }
    view.negotiated = client_ && client().state_negotiated();
    view.desired_applied = data_.desired_version;
    view.desired_received = received_version_;
    view.reported_version = data_.reported_version;
    view.report_pending = data_.in_flight || data_.report_wanted;
    view.in_sync = !view.report_pending && !awaiting_applied_ &&
                   received_version_ == data_.desired_version && !state_dirty_;
    return view;
}

}  // namespace tether

// SPDX-License-Identifier: MIT
// Plain WebSocket delivery (no tether.v1): what the kernel took, what a pong
// confirmed, and what a dying link leaves in doubt. See include/tether/client.h
// and docs/ARCHITECTURE.md "Plain WebSocket delivery".
//
// Bookkeeping, all per connection and in byte offsets of the stream's output
// (WsStreamCounters::bytes_written plus what is queued, so offsets never
// move when the transmit buffer is compacted):
//  - batches_: each drain's run of data frames, contiguous in the output,
//    with the offsets where it starts and ends. A batch leaves the ring once
//    the kernel has taken its last byte; the front batch may be partly taken.
//  - confirms_: the confirmation pings in flight, each naming the newest seq
//    and the count of messages queued before it. Pongs come back in order
//    and each confirms everything before its ping, so one answered ping
//    retires every older one too (RFC 6455 lets a peer answer only the
//    latest of several).
// handed_messages_ counts the messages whose frame has at least one byte at
// the kernel; confirmed_messages_ those a pong covered. Their difference when
// the link dies is what is in doubt.
#include <cstring>

#include "tether/client.h"

namespace tether {
namespace {

constexpr std::uint8_t kConfirmMagic[4] = {'t', 'c', 'f', 'm'};
constexpr std::size_t kConfirmPayloadSize = 8;

// Bytes of one masked client data frame carrying `size` payload bytes.
std::uint64_t frame_bytes(std::size_t size) {
    const std::uint64_t length = size < 126 ? 0 : (size <= 0xFFFF ? 2 : 8);
    return 2 + length + 4 + size;
}

}  // namespace

const char* to_string(Delivery delivery) {
    switch (delivery) {
        case Delivery::kAtMostOnce:
            return "at-most-once";
        case Delivery::kAtLeastOnce:
            return "at-least-once";
    }
    return "unknown";
}

bool parse_delivery(const char* text, Delivery* delivery) {
    if (text == nullptr || delivery == nullptr) {
        return false;
    }
    if (std::strcmp(text, "at-most-once") == 0) {
        *delivery = Delivery::kAtMostOnce;
        return true;
    }
    if (std::strcmp(text, "at-least-once") == 0) {
        *delivery = Delivery::kAtLeastOnce;
        return true;
    }
    return false;
}

bool Client::is_confirm_payload(const std::uint8_t* payload, std::size_t size) {
    return size == kConfirmPayloadSize && payload != nullptr &&
           std::memcmp(payload, kConfirmMagic, sizeof kConfirmMagic) == 0;
}

std::uint32_t Client::confirm_id_of(const std::uint8_t* payload) {
    return static_cast<std::uint32_t>(payload[4]) << 24 |
           static_cast<std::uint32_t>(payload[5]) << 16 |
           static_cast<std::uint32_t>(payload[6]) << 8 | static_cast<std::uint32_t>(payload[7]);
}

void Client::plain_queued(std::uint64_t first_seq, std::uint64_t last_seq, std::size_t count,
                          std::uint64_t start_offset) {
    if (resume_mode()) {
        return;
    }
    if (first_seq_on_link_ == 0) {
        first_seq_on_link_ = first_seq;
    }
    queued_messages_ += count;
    Batch& batch = batches_[(batch_head_ + batch_count_) % kMaxBatches];
    batch.first_seq = first_seq;
    batch.last_seq = last_seq;
    batch.start = start_offset;
    batch.end = written_offset() + stream_.queued_bytes();
    batch.messages_through = queued_messages_;
    ++batch_count_;
    confirm_owed_ = true;
}

void Client::plain_queue_confirm() {
    if (resume_mode() || !confirm_owed_ || confirm_count_ == kMaxConfirmPings ||
        !stream_.attached()) {
        return;
    }
    const std::uint32_t id = next_confirm_id_;
    const std::uint8_t payload[kConfirmPayloadSize] = {
        kConfirmMagic[0],
        kConfirmMagic[1],
        kConfirmMagic[2],
        kConfirmMagic[3],
        static_cast<std::uint8_t>(id >> 24),
        static_cast<std::uint8_t>(id >> 16),
        static_cast<std::uint8_t>(id >> 8),
        static_cast<std::uint8_t>(id),
    };
    if (!stream_.queue_ping(payload, sizeof payload)) {
        return;  // no room now: the next drain tries again, and covers more
    }
    next_confirm_id_ = id + 1 == 0 ? 1 : id + 1;
    ConfirmPing& ping = confirms_[(confirm_head_ + confirm_count_) % kMaxConfirmPings];
    ping.id = id;
    ping.last_seq = last_queued_seq_;
    ping.messages_through = queued_messages_;
    ++confirm_count_;
    confirm_owed_ = false;
    ++counters_.confirm_pings;
}

// At-most-once: a disk copy learns that these messages are gone before the
// kernel can have any of them, so a restart never sends them again.
void Client::plain_before_write() {
    if (at_least_once() || batch_count_ == 0) {
        return;
    }
    const Batch& newest = batches_[(batch_head_ + batch_count_ - 1) % kMaxBatches];
    if (newest.last_seq > announced_seq_) {
        announced_seq_ = newest.last_seq;
        if (listener_ != nullptr) {
            listener_->on_uplink_handover(newest.last_seq);
        }
    }
}

void Client::plain_after_write() {
    const std::uint64_t written = written_offset();
    while (batch_count_ > 0) {
        const Batch& batch = batches_[batch_head_];
        if (batch.end > written) {
            break;
        }
        handed_messages_ = batch.messages_through;
        handed_seq_ = batch.last_seq;
        if (!at_least_once()) {
            (void)outbox_.ack(batch.last_seq);
        }
        batch_head_ = (batch_head_ + 1) % kMaxBatches;
        --batch_count_;
    }
}

void Client::plain_confirmed(std::uint32_t id) {
    std::size_t found = confirm_count_;
    for (std::size_t i = 0; i < confirm_count_; ++i) {
        if (confirms_[(confirm_head_ + i) % kMaxConfirmPings].id == id) {
            found = i;
            break;
        }
    }
    if (found == confirm_count_) {
        return;  // not a ping of ours on this connection
    }
    const ConfirmPing ping = confirms_[(confirm_head_ + found) % kMaxConfirmPings];
    confirm_head_ = (confirm_head_ + found + 1) % kMaxConfirmPings;
    confirm_count_ -= found + 1;
    if (ping.messages_through > confirmed_messages_) {
        counters_.confirmed += ping.messages_through - confirmed_messages_;
        confirmed_messages_ = ping.messages_through;
    }
    if (ping.last_seq > confirmed_seq_) {
        confirmed_seq_ = ping.last_seq;
        if (at_least_once()) {
            (void)outbox_.ack(ping.last_seq);
        }
        if (ping.last_seq > counters_.uplink_acked) {
            counters_.uplink_acked = ping.last_seq;
        }
        if (listener_ != nullptr) {
            listener_->on_uplink_acked(ping.last_seq);
        }
    }
    plain_queue_confirm();
}

// The link is going: which messages had bytes at the kernel? Whole batches
// were settled by plain_after_write(); the front one may be partly written,
// and its entries are walked frame by frame to find where the kernel stopped.
// At-most-once frees every message with a byte at the kernel (never sent
// again) and keeps the rest for the next connection; at-least-once keeps all
// that no pong confirmed.
void Client::plain_link_closed(bool clean) {
    const std::uint64_t written = written_offset();
    plain_after_write();
    if (batch_count_ > 0) {
        const Batch& batch = batches_[batch_head_];
        if (batch.start < written) {
            std::uint64_t offset = batch.start;
            std::uint64_t handed = handed_messages_;
            std::uint64_t last = 0;
            bool walkable = outbox_.oldest_seq() <= batch.first_seq;
            OutboxEntry entry;
            for (Outbox::Iterator it = outbox_.unacked(); walkable && it.next(&entry);) {
                if (entry.seq < batch.first_seq) {
                    continue;
                }
                if (entry.seq > batch.last_seq || offset >= written) {
                    break;
                }
                offset += frame_bytes(entry.size);
                ++handed;
                last = entry.seq;
            }
            if (!walkable) {
                // Entries of the batch were evicted meanwhile: count it all.
                handed = batch.messages_through;
                last = batch.last_seq;
            }
            if (last != 0) {
                handed_messages_ = handed;
                handed_seq_ = last;
                if (!at_least_once()) {
                    (void)outbox_.ack(last);
                }
            }
        }
    }
    if (clean && handed_messages_ > confirmed_messages_) {
        counters_.confirmed += handed_messages_ - confirmed_messages_;
        confirmed_messages_ = handed_messages_;
        confirmed_seq_ = handed_seq_;
        if (at_least_once()) {
            (void)outbox_.ack(handed_seq_);
        }
        if (handed_seq_ > counters_.uplink_acked) {
            counters_.uplink_acked = handed_seq_;
        }
        if (listener_ != nullptr) {
            listener_->on_uplink_acked(handed_seq_);
        }
    }
    if (handed_messages_ > confirmed_messages_) {
        const std::uint64_t count = handed_messages_ - confirmed_messages_;
        counters_.in_doubt += count;
        const std::uint64_t first = confirmed_seq_ >= first_seq_on_link_ && confirmed_seq_ != 0
                                        ? confirmed_seq_ + 1
                                        : first_seq_on_link_;
        if (listener_ != nullptr) {
            listener_->on_in_doubt(first, handed_seq_, count, at_least_once());
        }
    }
    plain_reset();
}

void Client::plain_reset() {
    batch_head_ = 0;
    batch_count_ = 0;
    confirm_head_ = 0;
    confirm_count_ = 0;
    confirm_owed_ = false;
    queued_messages_ = 0;
    handed_messages_ = 0;
    handed_seq_ = 0;
    confirmed_messages_ = 0;
    confirmed_seq_ = 0;
    first_seq_on_link_ = 0;
    confirm_seen_ = false;
}

}  // namespace tether

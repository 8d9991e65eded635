// SPDX-License-Identifier: MIT
// A scripted RedisLink: records every command (arguments and tag) and lets a
// test deliver replies, pub/sub messages, connects and drops, as the real
// link would from inside service(). Nothing is answered on its own, so a test
// states every reply the engine gets, in order.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "tether/server/redis_link.h"

namespace tether::test {

class FakeRedisLink final : public server::RedisLink {
  public:
    struct Sent {
        std::vector<std::string> args;
        std::uint64_t tag = 0;
    };

    void set_events(server::RedisLinkEvents* events) override { events_ = events; }
    void subscribe(const std::vector<std::string>& channels) override { channels_ = channels; }
    void start(TimeMs) override { started_ = true; }
    bool command(const std::string_view* args, std::size_t count, std::uint64_t tag) override {
        if (!up_ || refuse_commands_) {
            return false;
        }
        Sent sent;
        for (std::size_t i = 0; i < count; ++i) {
            sent.args.emplace_back(args[i]);
        }
        sent.tag = tag;
        sent_.push_back(sent);
        unanswered_.push_back(tag);
        return true;
    }
    bool connected() const override { return up_; }
    void stop() override {
        stopped_ = true;
        up_ = false;
    }

    std::size_t poll_requests(PollRequest* out, std::size_t max) const override {
        if (max == 0 || fd_ < 0) {
            return 0;
        }
        out[0] = PollRequest{fd_, true, false};
        return 1;
    }
    bool next_deadline(TimeMs* at) const override {
        *at = deadline_;
        return has_deadline_;
    }
    bool has_buffered_input() const override { return false; }
    void service(TimeMs now) override {
        ++serviced_;
        last_service_ = now;
    }

    // The test's side.
    void connect() {
        up_ = true;
        events_->on_connected();
    }
    void drop(std::string_view reason) {
        up_ = false;
        unanswered_.clear();
        events_->on_disconnected(reason);
    }
    /// Answers the oldest unanswered command.
    void reply(const server::RedisValue& value) {
        const std::uint64_t tag = unanswered_.front();
        unanswered_.pop_front();
        events_->on_reply(tag, value);
    }
    /// Delivers a reply with an arbitrary tag (a confused link).
    void reply_with_tag(std::uint64_t tag, const server::RedisValue& value) {
        events_->on_reply(tag, value);
    }
    void publish(std::string_view channel, std::string_view payload) {
        events_->on_message(channel, payload);
    }
    /// The commands sent since the last take(), each as its arguments joined
    /// by single spaces; clears the list.
    std::vector<std::string> take() {
        std::vector<std::string> lines;
        for (const Sent& sent : sent_) {
            std::string line;
            for (const std::string& arg : sent.args) {
                if (!line.empty()) {
                    line += ' ';
                }
                line += arg;
            }
            lines.push_back(line);
        }
        sent_.clear();
        return lines;
    }
    const std::vector<Sent>& sent() const { return sent_; }
    std::size_t unanswered() const { return unanswered_.size(); }
    const std::vector<std::string>& channels() const { return channels_; }
    bool started() const { return started_; }
    bool stopped() const { return stopped_; }
    int serviced() const { return serviced_; }
    TimeMs last_service() const { return last_service_; }
    void refuse_commands(bool refuse) { refuse_commands_ = refuse; }
    void set_fd(int fd) { fd_ = fd; }
    void set_deadline(bool has, TimeMs at) {
        has_deadline_ = has;
        deadline_ = at;
    }

  private:
    server::RedisLinkEvents* events_ = nullptr;
    std::vector<std::string> channels_;
    std::vector<Sent> sent_;
    std::deque<std::uint64_t> unanswered_;
    bool up_ = false;
    bool started_ = false;
    bool stopped_ = false;
    bool refuse_commands_ = false;
    int serviced_ = 0;
    TimeMs last_service_ = 0;
    int fd_ = -1;
    bool has_deadline_ = false;
    TimeMs deadline_ = 0;
};

}  // namespace tether::test

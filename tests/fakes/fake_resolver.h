// SPDX-License-Identifier: MIT
// A NameResolver that answers from a script: each start() takes the next
// scripted outcome (default: done with 127.0.0.1).
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "tether/resolver.h"

namespace tether::test {

class FakeResolver final : public NameResolver {
  public:
    struct Outcome {
        ResolveStatus status;
        std::vector<net::IpAddress> addresses;
        bool immediate;  ///< answered inside start(), else on the first poll()
    };

    void push(const Outcome& outcome) { script_.push_back(outcome); }
    const std::vector<std::string>& hosts() const { return hosts_; }
    std::size_t cancels() const { return cancels_; }

    ResolveStatus start(const char* host, TimeMs now, std::uint32_t random) override {
        (void)now;
        (void)random;
        hosts_.push_back(host);
        if (script_.empty()) {
            current_ = Outcome{ResolveStatus::kDone, {net::make_ipv4(127, 0, 0, 1)}, true};
        } else {
            current_ = script_.front();
            script_.pop_front();
        }
        pending_ = !current_.immediate;
        return pending_ ? ResolveStatus::kPending : current_.status;
    }
    ResolveStatus poll(TimeMs now, std::uint32_t random) override {
        (void)now;
        (void)random;
        pending_ = false;
        return current_.status;
    }
    std::size_t addresses(net::IpAddress* out, std::size_t max) const override {
        std::size_t n = 0;
        for (; n < max && n < current_.addresses.size(); ++n) {
            out[n] = current_.addresses[n];
        }
        return n;
    }
    void cancel() override { ++cancels_; }
    std::size_t fds(int* out, std::size_t max) const override {
        if (pending_ && max > 0) {
            out[0] = 999;
            return 1;
        }
        return 0;
    }
    TimeMs next_deadline() const override { return 0; }

  private:
    std::deque<Outcome> script_;
    Outcome current_{ResolveStatus::kDone, {}, true};
    bool pending_ = false;
    std::vector<std::string> hosts_;
    std::size_t cancels_ = 0;
};

}  // namespace tether::test

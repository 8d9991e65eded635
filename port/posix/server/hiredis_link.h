// SPDX-License-Identifier: MIT
// tether::server::HiredisLink: the RedisLink of tether-server, over hiredis's
// asynchronous API (0.14 and later) driven from the server's own poll loop.
// It never blocks: connects are non-blocking, every descriptor goes to the
// loop through poll_requests(), and service() moves bytes with a zero-timeout
// poll() on its own descriptors, so hiredis runs only what is ready.
//
// Connections: a command connection and a subscriber connection to the
// primary, plus, behind Sentinel, a short-lived one to a sentinel.
//
// Addresses are numeric (hiredis would resolve a name with a blocking
// getaddrinfo() inside the loop): parse_redis_address() refuses a name.
//
// Finding the primary:
//   - direct: `HOST:PORT` of the primary;
//   - Sentinel: a list of sentinels and a master name. Each (re)connect asks
//     the sentinels in turn `SENTINEL get-master-addr-by-name NAME`
//     (asynchronously), connects to the answer and checks `ROLE` is master.
// In both cases the link is up once ROLE said "master" and every channel is
// subscribed. It goes down (on_disconnected, every pending command without
// a reply) when a connection drops, when a command has had no reply for
// command_timeout_ms, when a connect takes longer than that, or when a reply
// is a READONLY, MASTERDOWN or LOADING error (the primary moved, or is not
// serving yet). It then waits a bounded exponential backoff (time passed in)
// and finds the primary again.
//
// Example:
//   tether::server::HiredisLinkOptions link_options;
//   std::string error;
//   if (!tether::server::parse_redis_address("127.0.0.1:6379", &link_options.primary, &error)) {
//       fprintf(stderr, "--redis: %s\n", error.c_str());
//   }
//   tether::server::HiredisLink link(link_options);
//   tether::server::RedisEngine engine(link, engine_options);  // drives it
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tether/server/redis_link.h"

struct redisAsyncContext;  // hiredis, in hiredis_link.cpp only

namespace tether::server {

struct RedisAddress {
    std::string host;  ///< numeric IPv4 or IPv6 (without brackets)
    std::uint16_t port = 0;
};

/// Parses `A.B.C.D:PORT` or `[IPV6]:PORT` (port 1..65535). False, with a
/// one-line reason in *error (when not null), for anything else, host names
/// included.
bool parse_redis_address(std::string_view text, RedisAddress* out, std::string* error);

struct HiredisLinkOptions {
    RedisAddress primary;                     ///< used when `sentinels` is empty
    std::vector<RedisAddress> sentinels;      ///< Sentinel mode when not empty
    std::string master_name;                  ///< Sentinel mode: the monitored master's name
    std::uint32_t command_timeout_ms = 5000;  ///< no reply (or no connect) this long: dead
    std::uint32_t backoff_initial_ms = 100;   ///< first wait before reconnecting
    std::uint32_t backoff_max_ms = 5000;      ///< the cap of the doubling waits
    /// One line per discovery problem and reconnect (may be empty).
    std::function<void(std::string_view line)> log;
};

class HiredisLink final : public RedisLink {
  public:
    explicit HiredisLink(HiredisLinkOptions options);
    ~HiredisLink() override;
    HiredisLink(const HiredisLink&) = delete;
    HiredisLink& operator=(const HiredisLink&) = delete;

    void set_events(RedisLinkEvents* events) override;
    void subscribe(const std::vector<std::string>& channels) override;
    void start(TimeMs now) override;
    bool command(const std::string_view* args, std::size_t count, std::uint64_t tag) override;
    bool connected() const override;
    void stop() override;

    std::size_t poll_requests(PollRequest* out, std::size_t max) const override;
    bool next_deadline(TimeMs* at) const override;
    bool has_buffered_input() const override { return false; }
    void service(TimeMs now) override;

    /// The primary in use or being connected to ("HOST:PORT"; empty before).
    const std::string& primary() const { return primary_text_; }
    /// Times the link came up.
    std::uint64_t connects() const { return connects_; }

    /// One connection and the replies it waits for (public for hiredis's C
    /// callbacks in hiredis_link.cpp).
    struct Conn {
        enum class Kind : std::uint8_t { kCommand, kSubscriber, kSentinel };
        struct Waiting {
            std::uint64_t tag;
            bool internal;  ///< ROLE, SENTINEL or SUBSCRIBE: the link's own
            TimeMs sent;
        };
        HiredisLink* owner = nullptr;
        Kind kind = Kind::kCommand;
        redisAsyncContext* context = nullptr;  ///< null once hiredis freed it
        bool want_read = false;
        bool want_write = false;
        bool connected = false;
        bool dead = false;  ///< failed: later replies are dropped
        TimeMs started = 0;
        std::deque<Waiting> waiting;
    };

  private:
    enum class Phase : std::uint8_t { kIdle, kDiscovering, kConnecting, kUp, kWaiting };

    void begin(TimeMs now);
    void ask_next_sentinel(TimeMs now);
    void connect_primary(const RedisAddress& address, TimeMs now);
    bool open_conn(Conn& conn, const RedisAddress& address, TimeMs now);
    void close_conn(Conn& conn);
    void pump(Conn& conn);
    void check_timeouts(TimeMs now);
    void settle(TimeMs now);
    void go_down(TimeMs now, const std::string& reason);
    void log(const std::string& line);

  public:  // called from the C callbacks in hiredis_link.cpp
    void on_conn_failed(Conn& conn, std::string reason);
    void on_conn_reply(Conn& conn, const RedisValue& reply);

  private:
    HiredisLinkOptions options_;
    RedisLinkEvents* events_ = nullptr;
    std::vector<std::string> channels_;
    Phase phase_ = Phase::kIdle;
    TimeMs now_ = 0;
    TimeMs retry_at_ = 0;
    std::uint32_t attempts_ = 0;
    std::size_t sentinel_index_ = 0;
    std::string primary_text_;
    std::uint64_t connects_ = 0;
    bool role_ok_ = false;
    std::size_t subscribed_ = 0;
    bool sentinel_answered_ = false;
    bool sentinel_failed_ = false;
    RedisAddress sentinel_answer_;
    std::string failure_;        ///< non-empty: the primary connections must go down
    bool tearing_down_ = false;  ///< inside redisAsyncFree: its callbacks are expected
    Conn command_;
    Conn subscriber_;
    Conn sentinel_;
};

}  // namespace tether::server

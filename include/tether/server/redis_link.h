// SPDX-License-Identifier: MIT
// tether::server::RedisLink: what the Redis engine needs from a Redis client,
// without any client library's types. port/posix/server/hiredis_link.h
// implements it over hiredis's asynchronous API; tests/fakes/fake_redis_link.h
// scripts it.
//
// A RedisLink is one logical connection to the current Redis primary: a
// command connection (requests and their replies, in order) and a
// subscriber connection (pub/sub messages). It is connected when both are up
// (and, behind Sentinel, the primary has confirmed its role). When either
// drops, the link is down as a whole: every command still pending gets no
// reply, on_disconnected() says so once, and the link reconnects on its own.
//
// Every event reaches RedisLinkEvents from inside service(), never from
// inside command() or subscribe().
//
// Example (the engine's side):
//   const std::string_view argv[] = {"HGETALL", "tether:{0a6c...}:state"};
//   if (!link.command(argv, 2, tag)) { /* not connected: nothing queued */ }
//   ...                               // later, inside link.service(now):
//   void on_reply(std::uint64_t tag, const RedisValue& reply) override { ... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/pollable.h"
#include "tether/time.h"

namespace tether::server {

/// One parsed RESP2 reply.
struct RedisValue {
    enum class Type : std::uint8_t {
        kNil,      ///< a nil bulk string or nil array
        kInteger,  ///< `integer`
        kString,   ///< a bulk string: `text` (binary-safe)
        kStatus,   ///< a simple string such as "OK": `text`
        kError,    ///< an error reply, e.g. "READONLY You can't write...": `text`
        kArray,    ///< `elements`
    };
    Type type = Type::kNil;
    std::int64_t integer = 0;
    std::string text;
    std::vector<RedisValue> elements;

    static RedisValue nil() { return RedisValue{}; }
    static RedisValue of_integer(std::int64_t value) {
        RedisValue v;
        v.type = Type::kInteger;
        v.integer = value;
        return v;
    }
    static RedisValue of_string(std::string_view bytes) { return of_text(Type::kString, bytes); }
    static RedisValue of_status(std::string_view status) { return of_text(Type::kStatus, status); }
    static RedisValue of_error(std::string_view message) { return of_text(Type::kError, message); }
    static RedisValue of_array(std::vector<RedisValue> items) {
        RedisValue v;
        v.type = Type::kArray;
        v.elements = std::move(items);
        return v;
    }

    bool is_error() const { return type == Type::kError; }
    /// True for a string or status reply equal to `expected`.
    bool is_text(std::string_view expected) const {
        return (type == Type::kString || type == Type::kStatus) && text == expected;
    }

  private:
    static RedisValue of_text(Type kind, std::string_view bytes) {
        RedisValue v;
        v.type = kind;
        v.text.assign(bytes.data(), bytes.size());
        return v;
    }
};

/// What a RedisLink tells its owner (the engine), from inside service() only.
class RedisLinkEvents {
  public:
    virtual ~RedisLinkEvents() = default;
    /// Both connections are up: commands may be sent (nothing was queued
    /// while down). Follows start() and every reconnect.
    virtual void on_connected() = 0;
    /// The link went down (`reason`: for logs). Every command sent before it
    /// gets no reply; none of their tags comes back.
    virtual void on_disconnected(std::string_view reason) = 0;
    /// The reply of the command sent with `tag`. Replies come in the order
    /// the commands were sent. An error reply is a reply (its command ran or
    /// was refused); only errors that mean "wrong server" (READONLY,
    /// MASTERDOWN, LOADING) take the link down instead of being delivered.
    virtual void on_reply(std::uint64_t tag, const RedisValue& reply) = 0;
    /// A pub/sub message on one of the subscribed channels.
    virtual void on_message(std::string_view channel, std::string_view payload) = 0;
};

class RedisLink : public Pollable {
  public:
    ~RedisLink() override = default;

    /// Where events go; set once before start().
    virtual void set_events(RedisLinkEvents* events) = 0;

    /// Channels the subscriber connection subscribes to on every (re)connect.
    /// Set before start(); on_connected() follows only once they are
    /// subscribed.
    virtual void subscribe(const std::vector<std::string>& channels) = 0;

    /// Starts connecting (addresses are the implementation's configuration);
    /// on_connected() follows from a later service().
    virtual void start(TimeMs now) = 0;

    /// Sends one command of `count` arguments (binary-safe, copied before the
    /// call returns). Its reply comes through on_reply(tag). False when not
    /// connected (or the command cannot be queued): nothing was queued, no
    /// reply follows.
    virtual bool command(const std::string_view* args, std::size_t count, std::uint64_t tag) = 0;

    /// True between on_connected() and on_disconnected().
    virtual bool connected() const = 0;

    /// Drops both connections at once (before exit). No event follows.
    virtual void stop() = 0;
};

}  // namespace tether::server

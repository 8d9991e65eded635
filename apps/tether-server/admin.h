// SPDX-License-Identifier: MIT
// tether-server's admin interface: HTTP/1.1 on a loopback port, one request
// per connection (documented in --help and docs/PROTOCOL.md). Every POST must
// carry the admin token (tether/server/admin_policy.h); a connection has
// --admin-timeout-ms to send its request and take the answer.
#pragma once

#include <cstdint>
#include <string>

#include "tether/server/session_engine.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether::server {

class Server;

class AdminConnection {
  public:
    AdminConnection(Server& server, int fd, TimeMs now);
    ~AdminConnection();
    AdminConnection(const AdminConnection&) = delete;
    AdminConnection& operator=(const AdminConnection&) = delete;

    int fd() const { return fd_; }
    short poll_events() const;
    void service(TimeMs now);
    bool done() const { return fd_ < 0; }
    /// The engine's answer to this request's push.
    void finish_push(Status status, std::uint64_t seq);
    /// The engine's answer to this request's desired change.
    void finish_desired(Status status, std::uint64_t version);
    /// The engine's answer to this request's state read.
    void finish_state(Status status, const StateDocuments& documents);
    /// Its request is not complete yet (it may be evicted for a newcomer).
    bool idle() const { return !responded_; }
    TimeMs opened_at() const { return opened_at_; }
    /// Closes it when `timeout_ms` have passed since it was accepted (true
    /// then); otherwise says in *wait_ms how long it has left.
    bool expire(TimeMs now, std::uint32_t timeout_ms, std::uint32_t* wait_ms);
    /// Closes it at once (a newcomer took its place).
    void close() { finish(); }

  private:
    void handle(TimeMs now);
    void respond(int status, const std::string& content_type, const std::string& body,
                 const char* extra_headers = "");
    void write_out();
    void finish();

    Server& server_;
    int fd_;
    TimeMs opened_at_;
    std::string in_;
    std::string out_;
    std::size_t written_ = 0;
    bool responded_ = false;
    bool waiting_ = false;  // for the engine's answer: nothing to read or write
};

/// The value of `name` in a query string ("a=1&b=x%20y"), percent-decoded
/// ('+' is a space). False when absent.
bool query_value(const std::string& query, const char* name, std::string* value);

}  // namespace tether::server

// tether-server's admin interface: HTTP/1.1 on a loopback port, one request
// per connection (documented in --help and docs/PROTOCOL.md).
#pragma once

#include <cstdint>
#include <string>

#include "tether/status.h"
#include "tether/time.h"

namespace tether::server {

class Server;

class AdminConnection {
  public:
    AdminConnection(Server& server, int fd);
    ~AdminConnection();
    AdminConnection(const AdminConnection&) = delete;
    AdminConnection& operator=(const AdminConnection&) = delete;

    int fd() const { return fd_; }
    short poll_events() const;
    void service(TimeMs now);
    bool done() const { return fd_ < 0; }
    /// The engine's answer to this request's push.
    void finish_push(Status status, std::uint64_t seq);

  private:
    void handle(TimeMs now);
    void respond(int status, const std::string& content_type, const std::string& body);
    void write_out();
    void finish();

    Server& server_;
    int fd_;
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

// SPDX-License-Identifier: MIT
#include "fakes/fake_connection.h"

namespace tether::test {

Status FakeConnection::open(const net::IpAddress& address, std::uint16_t port, bool tls,
                            const char* server_name, TransportError* error) {
    opened_.push_back(Opened{address, port, tls, server_name != nullptr ? server_name : ""});
    if (!open_failures_.empty()) {
        *error = open_failures_.front();
        open_failures_.erase(open_failures_.begin());
        return Status::kIoError;
    }
    // A fresh stream per connection, kept alive so tests can inspect old ones.
    streams_.emplace_back();
    stream_ = &streams_.back();
    open_ = true;
    tcp_connected_ = false;
    tls_ = tls;
    connect_polls_ = 0;
    tls_polls_ = 0;
    return Status::kOk;
}

Status FakeConnection::start_tls(const char* server_name, TransportError* error) {
    tls_started_.push_back(server_name != nullptr ? server_name : "");
    if (!open_ || !tcp_connected_ || tls_) {
        *error = TransportError::kOther;
        return Status::kInvalidArgument;
    }
    if (start_tls_failure_ != TransportError::kNone) {
        *error = start_tls_failure_;
        start_tls_failure_ = TransportError::kNone;
        return Status::kIoError;
    }
    tls_ = true;
    tls_polls_ = 0;
    return Status::kOk;
}

IoResult FakeConnection::establish() {
    if (!open_) {
        return IoResult::failed(TransportError::kOther);
    }
    if (establish_error_ != TransportError::kNone) {
        const TransportError error = establish_error_;
        establish_error_ = TransportError::kNone;
        return IoResult::failed(error);
    }
    if (connect_polls_ < connect_delay_) {
        ++connect_polls_;
        return IoResult::would_block();
    }
    if (!tcp_connected_ && tls_) {
        tcp_connected_ = true;
        return IoResult::would_block();  // TLS next
    }
    if (tls_ && tls_polls_ < tls_delay_) {
        ++tls_polls_;
        return IoResult::would_block();
    }
    tcp_connected_ = true;
    return IoResult::ok(0);
}

IoResult FakeConnection::read(std::uint8_t* out, std::size_t size) {
    return stream_->read(out, size);
}

IoResult FakeConnection::write(const std::uint8_t* data, std::size_t size) {
    return stream_->write(data, size);
}

IoResult FakeConnection::writev(const IoSlice* slices, std::size_t count) {
    return stream_->writev(slices, count);
}

void FakeConnection::close() {
    ++close_calls_;
    open_ = false;
    tcp_connected_ = false;
}

}  // namespace tether::test

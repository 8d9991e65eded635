// SPDX-License-Identifier: MIT
#include "tether/port/posix_resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tether/net/hosts_file.h"
#include "tether/net/resolv_conf.h"

namespace tether::port {
namespace {

// Holds either socket address family; what sendto and recvfrom take.
union SocketAddress {
    sockaddr base;
    sockaddr_in v4;
    sockaddr_in6 v6;
};

socklen_t to_socket_address(const net::IpAddress& address, std::uint16_t port, SocketAddress* out) {
    std::memset(out, 0, sizeof *out);
    if (address.family == net::kIpv4) {
        out->v4.sin_family = AF_INET;
        out->v4.sin_port = htons(port);
        std::memcpy(&out->v4.sin_addr, address.bytes, 4);
        return sizeof out->v4;
    }
    out->v6.sin6_family = AF_INET6;
    out->v6.sin6_port = htons(port);
    std::memcpy(&out->v6.sin6_addr, address.bytes, 16);
    return sizeof out->v6;
}

// False for a family other than the two we open sockets for.
bool from_socket_address(const SocketAddress& in, net::IpAddress* out, std::uint16_t* port) {
    *out = net::IpAddress{};
    if (in.base.sa_family == AF_INET) {
        out->family = net::kIpv4;
        std::memcpy(out->bytes, &in.v4.sin_addr, 4);
        *port = ntohs(in.v4.sin_port);
        return true;
    }
    if (in.base.sa_family == AF_INET6) {
        out->family = net::kIpv6;
        std::memcpy(out->bytes, &in.v6.sin6_addr, 16);
        *port = ntohs(in.v6.sin6_port);
        return true;
    }
    return false;
}

}  // namespace

PosixResolver::PosixResolver(const PosixResolverConfig& config)
    : config_(config), dns_(net::ResolvConf()) {}

PosixResolver::~PosixResolver() {
    close_sockets();
}

void PosixResolver::close_sockets() {
    for (int& fd : sockets_) {
        if (fd >= 0) {
            // Not retried on EINTR: on Linux the descriptor is gone either way.
            ::close(fd);
            fd = -1;
        }
    }
}

// Reads up to kMaxFileSize bytes of `path` into file_buffer_ and returns how
// many; 0 for a missing or unreadable file, which callers treat as empty.
// Regular files never block, so O_NONBLOCK is only a guard against a path
// that names a FIFO.
std::size_t PosixResolver::read_file(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return 0;
    }
    std::size_t size = 0;
    while (size < sizeof file_buffer_) {
        const ssize_t got = ::read(fd, file_buffer_ + size, sizeof file_buffer_ - size);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;  // end of file, or an error: use what was read
        }
        size += static_cast<std::size_t>(got);
    }
    ::close(fd);
    return size;
}

ResolveStatus PosixResolver::start(const char* host, TimeMs now, std::uint32_t random) {
    cancel();
    const std::size_t length = std::strlen(host);
    net::IpAddress found[net::DnsResolver::kMaxAddresses];
    if (net::parse_ip_address(host, length, &found[0])) {
        finish_with(found, 1);
        return status_;
    }
    // The hosts file first ("hosts: files dns"); its bytes are done with
    // before the same buffer takes resolv.conf.
    const std::size_t hosts_size = read_file(config_.hosts_path);
    const std::size_t hosts_count =
        net::lookup_hosts(file_buffer_, hosts_size, host, found, net::DnsResolver::kMaxAddresses);
    if (hosts_count > 0) {
        finish_with(found, hosts_count);
        return status_;
    }
    {
        // About 1.6 KB of stack, for the moment it takes to parse and copy.
        net::ResolvConf conf;
        net::parse_resolv_conf(file_buffer_, read_file(config_.resolv_conf_path), &conf);
        dns_.reconfigure(conf);
    }
    if (dns_.start(host, now, random) != net::DnsStatus::kOk) {
        return finish();
    }
    status_ = ResolveStatus::kPending;
    send_pending_datagrams();
    return status_;
}

ResolveStatus PosixResolver::poll(TimeMs now, std::uint32_t random) {
    if (status_ != ResolveStatus::kPending) {
        return status_;
    }
    receive_datagrams(now, random);
    dns_.poll(now);
    send_pending_datagrams();
    if (dns_.state() == net::DnsResolverState::kResolving) {
        return status_;
    }
    return finish();
}

// The stub resolver left kResolving (or never entered it): record the result
// and give the sockets back.
ResolveStatus PosixResolver::finish() {
    if (dns_.state() == net::DnsResolverState::kDone) {
        finish_with(dns_.addresses(), dns_.address_count());
        return status_;
    }
    close_sockets();
    result_count_ = 0;
    status_ = dns_.status() == net::DnsStatus::kNameError ? ResolveStatus::kNameError
                                                          : ResolveStatus::kFailed;
    return status_;
}

void PosixResolver::finish_with(const net::IpAddress* found, std::size_t count) {
    close_sockets();
    result_count_ = count;
    for (std::size_t i = 0; i < count; ++i) {
        result_[i] = found[i];
    }
    status_ = ResolveStatus::kDone;
}

void PosixResolver::send_pending_datagrams() {
    net::DnsDatagram datagram{};
    while (dns_.next_datagram(&datagram)) {
        send_datagram(datagram);
    }
}

// Failures are deliberately dropped: the query then counts as lost, and the
// stub resolver's deadline moves the lookup to the next try.
void PosixResolver::send_datagram(const net::DnsDatagram& datagram) {
    const net::IpAddress& server = dns_.conf().nameservers[datagram.server];
    const bool v6 = server.family == net::kIpv6;
    int& fd = sockets_[static_cast<std::size_t>(v6 ? Family::kV6 : Family::kV4)];
    if (fd < 0) {
        fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return;  // e.g. IPv6 disabled, or out of descriptors
        }
    }
    SocketAddress to;
    const socklen_t to_size = to_socket_address(server, config_.dns_port, &to);
    ssize_t sent = -1;
    do {
        sent = ::sendto(fd, datagram.data, datagram.size, 0, &to.base, to_size);
    } while (sent < 0 && errno == EINTR);
}

void PosixResolver::receive_datagrams(TimeMs now, std::uint32_t random) {
    std::size_t budget = kMaxDatagramsPerPoll;
    for (const int fd : sockets_) {
        while (fd >= 0 && budget > 0 && dns_.state() == net::DnsResolverState::kResolving) {
            SocketAddress from;
            socklen_t from_size = sizeof from;
            const ssize_t got =
                ::recvfrom(fd, receive_buffer_, sizeof receive_buffer_, 0, &from.base, &from_size);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                break;  // EAGAIN: drained; any other error: nothing to read now either
            }
            --budget;
            net::IpAddress source;
            std::uint16_t port = 0;
            std::size_t server = 0;
            if (from_socket_address(from, &source, &port) && server_index(source, port, &server)) {
                dns_.on_datagram(server, receive_buffer_, static_cast<std::size_t>(got), now,
                                 random);
            }
        }
    }
}

// Spoof resistance, the part the stub resolver leaves to us: only a
// configured nameserver on the DNS port may answer. Ids and questions are
// checked by the stub resolver.
bool PosixResolver::server_index(const net::IpAddress& from, std::uint16_t port,
                                 std::size_t* index) const {
    if (port != config_.dns_port) {
        return false;
    }
    const net::ResolvConf& conf = dns_.conf();
    for (std::size_t i = 0; i < conf.nameserver_count; ++i) {
        if (conf.nameservers[i] == from) {
            *index = i;
            return true;
        }
    }
    return false;
}

std::size_t PosixResolver::addresses(net::IpAddress* out, std::size_t max) const {
    if (status_ != ResolveStatus::kDone) {
        return 0;
    }
    const std::size_t count = result_count_ < max ? result_count_ : max;
    for (std::size_t i = 0; i < count; ++i) {
        out[i] = result_[i];
    }
    return count;
}

void PosixResolver::cancel() {
    close_sockets();
    dns_.cancel();
    result_count_ = 0;
    status_ = ResolveStatus::kFailed;
}

std::size_t PosixResolver::fds(int* out, std::size_t max) const {
    std::size_t count = 0;
    if (status_ != ResolveStatus::kPending) {
        return 0;
    }
    for (const int fd : sockets_) {
        if (fd >= 0 && count < max) {
            out[count++] = fd;
        }
    }
    return count;
}

TimeMs PosixResolver::next_deadline() const {
    return dns_.next_deadline();
}

}  // namespace tether::port

// SPDX-License-Identifier: MIT
#include "listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tether/net/ip_address.h"

namespace tether::server {

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL, 0);
    (void)::fcntl(fd, F_SETFL, (flags < 0 ? 0 : flags) | O_NONBLOCK);
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int open_listener(const ListenAddress& address, std::uint16_t* bound_port, std::string* error) {
    const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
    net::IpAddress ip{};
    if (!net::parse_ip_address(host.c_str(), host.size(), &ip)) {
        *error = "not an IP address: " + address.host;
        return -1;
    }
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (ip.family == net::kIpv4) {
        sockaddr_in* in4 = reinterpret_cast<sockaddr_in*>(&storage);
        in4->sin_family = AF_INET;
        in4->sin_port = htons(address.port);
        std::memcpy(&in4->sin_addr, ip.bytes, 4);
        length = sizeof *in4;
    } else {
        sockaddr_in6* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(address.port);
        std::memcpy(&in6->sin6_addr, ip.bytes, 16);
        length = sizeof *in6;
    }
    const int fd = ::socket(storage.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(fd, 512) != 0) {
        *error = "bind " + address.host + ":" + std::to_string(address.port) + ": " +
                 std::strerror(errno);
        ::close(fd);
        return -1;
    }
    set_nonblocking(fd);
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof bound;
    (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
    *bound_port = bound.ss_family == AF_INET
                      ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                      : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    return fd;
}

int accept_connection(int listener, net::IpAddress* peer, int* error, std::uint16_t* peer_port) {
    *error = 0;
    for (;;) {
        sockaddr_storage from{};
        socklen_t from_length = sizeof from;
        const int fd = ::accept(listener, reinterpret_cast<sockaddr*>(&from), &from_length);
        if (fd >= 0) {
            set_nonblocking(fd);
            if (peer != nullptr) {
                *peer = net::IpAddress{};
                std::uint16_t port = 0;
                if (from.ss_family == AF_INET6) {
                    peer->family = net::kIpv6;
                    std::memcpy(peer->bytes, &reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr,
                                16);
                    port = ntohs(reinterpret_cast<sockaddr_in6*>(&from)->sin6_port);
                } else {
                    peer->family = net::kIpv4;
                    std::memcpy(peer->bytes, &reinterpret_cast<sockaddr_in*>(&from)->sin_addr, 4);
                    port = ntohs(reinterpret_cast<sockaddr_in*>(&from)->sin_port);
                }
                if (peer_port != nullptr) {
                    *peer_port = port;
                }
            }
            return fd;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            *error = errno;
            return -1;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

}  // namespace tether::server

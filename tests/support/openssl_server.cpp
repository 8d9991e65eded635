// SPDX-License-Identifier: MIT
#include "support/openssl_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

// CppUTest last: its operator-new macro breaks standard headers.
#include <CppUTest/TestHarness.h>
// MemoryLeakWarningPlugin.h needs TestHarness.h first.
#include <CppUTest/MemoryLeakWarningPlugin.h>

namespace tether::test {
namespace {

std::uint16_t bound_port(int fd) {
    sockaddr_in address = {};
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    return ntohs(address.sin_port);
}

// Binds 127.0.0.1:0; returns the socket, or -1.
int bind_any_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        return fd;
    }
    if (fd >= 0) {
        ::close(fd);
    }
    return -1;
}

void make_pki(TempDir& dir, TestPki* pki) {
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 ";
    const std::string quiet = " 2>/dev/null";
    auto path = [&dir](const char* name) { return dir.file(name); };
    pki->ca_cert = path("ca.crt");
    const std::string ca_key = path("ca.key");
    pki->unrelated_ca_cert = path("unrelated_ca.crt");
    const std::string unrelated_key = path("unrelated_ca.key");
    pki->client_ca_cert = path("client_ca.crt");
    const std::string client_ca_key = path("client_ca.key");
    pki->server_cert = path("server.crt");
    pki->server_key = path("server.key");
    pki->server_pin = path("server.pin");
    pki->wrong_name_cert = path("wrong.crt");
    pki->wrong_name_key = path("wrong.key");
    pki->client_cert = path("client.crt");
    pki->client_key = path("client.key");
    const std::string server_ext =
        dir.write_file("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n");
    const std::string wrong_ext = dir.write_file("wrong.ext", "subjectAltName=DNS:wrong.example\n");
    const std::string csr = path("request.csr");
    path("ca.srl");
    path("client_ca.srl");

    auto make_ca = [&](const std::string& cert, const std::string& key, const char* name) {
        return run_shell("openssl req -x509" + ec + "-keyout " + key + " -out " + cert +
                         " -subj /CN=" + name + quiet);
    };
    auto make_leaf = [&](const std::string& cert, const std::string& key, const char* name,
                         const std::string& ca, const std::string& signer_key,
                         const std::string& extensions) {
        return run_shell("openssl req" + ec + "-keyout " + key + " -out " + csr +
                         " -subj /CN=" + name + quiet) &&
               run_shell("openssl x509 -req -days 30 -in " + csr + " -CA " + ca + " -CAkey " +
                         signer_key + " -CAcreateserial -out " + cert +
                         (extensions.empty() ? "" : " -extfile " + extensions) + quiet);
    };
    const bool made = make_ca(pki->ca_cert, ca_key, "tether-test-ca") &&
                      make_ca(pki->unrelated_ca_cert, unrelated_key, "unrelated-ca") &&
                      make_ca(pki->client_ca_cert, client_ca_key, "tether-client-ca") &&
                      make_leaf(pki->server_cert, pki->server_key, "tether-server", pki->ca_cert,
                                ca_key, server_ext) &&
                      make_leaf(pki->wrong_name_cert, pki->wrong_name_key, "wrong", pki->ca_cert,
                                ca_key, wrong_ext) &&
                      make_leaf(pki->client_cert, pki->client_key, "tether-client",
                                pki->client_ca_cert, client_ca_key, "") &&
                      run_shell("openssl x509 -in " + pki->server_cert +
                                " -pubkey -noout | openssl pkey -pubin -outform DER | "
                                "openssl dgst -sha256 -binary > " +
                                pki->server_pin);
    if (!made) {
        std::fprintf(stderr, "openssl could not make the test certificates\n");
        std::abort();
    }
}

}  // namespace

bool run_shell(const std::string& command) {
    return std::system(command.c_str()) == 0;
}

std::int64_t monotonic_ms() {
    timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

const TestPki& TestPki::get() {
    // Made once and kept for the whole process (every TLS test reads the
    // files), so it is allocated outside CppUTest's per-test leak check.
    static TempDir* dir = nullptr;
    static TestPki* pki = nullptr;
    if (pki == nullptr) {
        MemoryLeakWarningPlugin::saveAndDisableNewDeleteOverloads();
        dir = new TempDir();
        pki = new TestPki();
        make_pki(*dir, pki);
        std::atexit([] {
            MemoryLeakWarningPlugin::saveAndDisableNewDeleteOverloads();
            delete dir;  // removes the files
        });
        MemoryLeakWarningPlugin::restoreNewDeleteOverloads();
    }
    return *pki;
}

OpenSslServer::~OpenSslServer() {
    stop();
}

void OpenSslServer::stop() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        int status;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    if (output_fd_ >= 0) {
        ::close(output_fd_);
        output_fd_ = -1;
    }
    if (input_fd_ >= 0) {
        ::close(input_fd_);
        input_fd_ = -1;
    }
}

bool OpenSslServer::start(const std::vector<std::string>& args) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        const int probe = bind_any_port();
        if (probe < 0) {
            return false;
        }
        const std::uint16_t port = bound_port(probe);
        ::close(probe);
        if (launch(port, args) && wait_for_output("ACCEPT", 5000)) {
            port_ = port;
            return true;
        }
        stop();  // most likely the port was taken in between
        output_.clear();
    }
    return false;
}

bool OpenSslServer::launch(std::uint16_t port, const std::vector<std::string>& args) {
    int output_pipe[2];
    int input_pipe[2];
    if (::pipe2(output_pipe, O_CLOEXEC) != 0) {
        return false;
    }
    if (::pipe2(input_pipe, O_CLOEXEC) != 0) {
        ::close(output_pipe[0]);
        ::close(output_pipe[1]);
        return false;
    }
    const std::string accept = "127.0.0.1:" + std::to_string(port);
    std::vector<std::string> words = {"openssl", "s_server", "-accept", accept};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& word : words) {
        argv.push_back(&word[0]);
    }
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
        ::dup2(input_pipe[0], 0);
        ::dup2(output_pipe[1], 1);
        ::dup2(output_pipe[1], 2);
        ::execvp("openssl", argv.data());
        ::_exit(127);
    }
    ::close(output_pipe[1]);
    ::close(input_pipe[0]);
    output_fd_ = output_pipe[0];
    input_fd_ = input_pipe[1];
    return pid_ > 0;
}

bool OpenSslServer::wait_for_output(const char* needle, int timeout_ms) {
    const std::int64_t deadline = monotonic_ms() + timeout_ms;
    while (output_.find(needle) == std::string::npos) {
        const std::int64_t left = deadline - monotonic_ms();
        if (left <= 0 || output_fd_ < 0) {
            return false;
        }
        pollfd entry = {output_fd_, POLLIN, 0};
        if (::poll(&entry, 1, static_cast<int>(left)) <= 0) {
            continue;
        }
        char buffer[4096];
        const ssize_t got = ::read(output_fd_, buffer, sizeof buffer);
        if (got <= 0) {
            return false;  // the server exited
        }
        output_.append(buffer, static_cast<std::size_t>(got));
    }
    return true;
}

ClosedPort::ClosedPort() : fd_(bind_any_port()) {
    port_ = fd_ >= 0 ? bound_port(fd_) : 0;
}

ClosedPort::~ClosedPort() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

}  // namespace tether::test

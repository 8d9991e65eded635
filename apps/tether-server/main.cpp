// SPDX-License-Identifier: MIT
// tether-server: the reference server of tether.v1. See --help.
#include <signal.h>

#include <cstdio>

#include "options.h"
#include "server.h"

namespace {

void on_stop_signal(int) {
    tether::server::Server::request_stop_from_signal();
}

}  // namespace

int main(int argc, char** argv) {
    tether::server::Options options;
    int exit_code = 0;
    if (!tether::server::parse_options(argc, argv, &options, &exit_code)) {
        return exit_code;
    }
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    (void)sigaction(SIGTERM, &action, nullptr);
    (void)sigaction(SIGINT, &action, nullptr);
    signal(SIGPIPE, SIG_IGN);

    tether::server::Server server(options);
    if (!server.start()) {
        return tether::server::kExitRuntime;
    }
    return server.run();
}

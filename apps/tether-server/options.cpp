// SPDX-License-Identifier: MIT
#include "options.h"

#include "cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tether::server {

const char* const kUsage =
    "usage: tether-server --data-dir DIR [--listen HOST:PORT] [--tls-listen HOST:PORT\n"
    "                     --cert FILE --key FILE [--client-ca FILE]] [options]\n"
    "\n"
    "The reference server of tether.v1 (docs/PROTOCOL.md): WebSocket (ws:// and wss://)\n"
    "with subprotocol tether.v1, bearer tokens, a durable per-session store.\n"
    "At least one of --listen and --tls-listen is required; port 0 picks a free port.\n"
    "On start it prints one line to stdout: listen=PORT tls=PORT admin=PORT (0: not listening).\n"
    "\n"
    "  --listen HOST:PORT       plain ws:// listener\n"
    "  --tls-listen HOST:PORT   wss:// listener (TLS 1.2, session tickets)\n"
    "  --cert FILE, --key FILE  PEM certificate chain and key for --tls-listen\n"
    "  --client-ca FILE         require client certificates from these CAs (mutual TLS)\n"
    "  --data-dir DIR           the session store (created when missing)\n"
    "  --tokens FILE            accepted bearer tokens, one per line: 'TOKEN [USER [DEVICE]]'\n"
    "                           ('#' comments). A session belongs to the user of the token\n"
    "                           that created it: another user's hello is closed 4003, as is\n"
    "                           a hello whose device is not the token's DEVICE. Without\n"
    "                           --tokens every upgrade is answered 401\n"
    "  --admin HOST:PORT        admin HTTP interface, loopback only (default 127.0.0.1:0)\n"
    "  --admin-token-file FILE  the token every admin POST must carry (first line of FILE);\n"
    "                           default: DIR/admin.token, created (mode 0600, 64 random hex\n"
    "                           digits) when missing and kept across restarts\n"
    "  --admin-timeout-ms T     an admin connection has T ms to send its request and take\n"
    "                           the answer (default 5000)\n"
    "  --admin-max-connections N  admin connections at once; beyond, the idle one open\n"
    "                           longest is closed for the newcomer (default 16)\n"
    "  --ack-every N            sync and ACK uplink at least every N messages (default 64)\n"
    "  --ack-interval-ms T      ... or after T ms (default 200)\n"
    "  --ping-interval-ms T     ping a connection silent for T ms (default 30000)\n"
    "  --ping-timeout-ms T      drop it when nothing arrives T ms after the ping (default 10000)\n"
    "  --max-connections N      connections at once, beyond: 503 (default 4096)\n"
    "  --max-message-size N     largest WebSocket message accepted, bytes (default 65536)\n"
    "  --replay-capacity N      downlink messages held per session for replay (default 1024)\n"
    "  --no-state               do not offer device state (PROTOCOL.md section 9) to clients\n"
    "                           whose hello lists \"state\" (default: offered)\n"
    "\n"
    "Store (docs/PROTOCOL.md, docs/DEPLOY.md):\n"
    "  --store file|redis       record logs under --data-dir (default), or Redis 7, shared\n"
    "                           by every instance on the same Redis\n"
    "  --redis HOST:PORT        the Redis primary (numeric address)\n"
    "  --redis-sentinel HOST:PORT[,HOST:PORT...]  Sentinels that know the primary\n"
    "                           (repeatable; instead of --redis); after a promotion\n"
    "                           the new primary is found through them\n"
    "  --redis-master NAME      the primary's name in Sentinel (default tether)\n"
    "  --redis-durability LEVEL reply: ACK uplink once the primary replied (add Redis's\n"
    "                           appendfsync always to survive its power cut); replicas:N:\n"
    "                           once WAIT saw N replicas take it (default reply)\n"
    "  --redis-wait-timeout-ms T  how long one WAIT may take (default 1000)\n"
    "  --redis-prefix P         key prefix (default tether)\n"
    "  --redis-uplink-maxlen N  uplink entries kept per session stream; what retention\n"
    "                           removes is counted in trimmed_through (default 1000000)\n"
    "  --instance-id ID         this instance's name in Redis (default HOST-PID)\n"
    "  --max-open-sessions N    sessions whose files (4 descriptors each) stay open; the\n"
    "                           least recently used idle one is closed beyond, and reopened\n"
    "                           when next used (default 256)\n"
    "  --auth-max-failures N    after N upgrades answered 401 from one source address (IPv6:\n"
    "                           its /64) within --auth-window-ms, answer its upgrades 429\n"
    "                           with Retry-After for --auth-penalty-ms without looking at\n"
    "                           the token (default 10; 0: never)\n"
    "  --auth-window-ms T       (default 10000)\n"
    "  --auth-penalty-ms T      (default 60000)\n"
    "  --auth-max-addresses N   source addresses tracked; beyond, the one whose last failure\n"
    "                           is oldest is forgotten (default 4096)\n"
    "  -h, --help               this text\n"
    "  --version                print \"tether-server VERSION\" and exit\n"
    "  Every option that takes a value accepts --option VALUE and --option=VALUE.\n"
    "\n"
    "Admin interface (HTTP/1.1 on --admin, one request per connection). Every POST needs\n"
    "'Authorization: Bearer TOKEN' (the admin token, see --admin-token-file), else 401;\n"
    "GET /stats and GET /metrics need none (the interface listens on loopback only):\n"
    "  GET  /stats                      JSON: every session (received, highest_seq,\n"
    "                                   next_expected, duplicates, gaps, live connections,\n"
    "                                   downlink next/acked) and the connections\n"
    "  GET  /metrics                    Prometheus text: connections, sessions, acks, store\n"
    "                                   latency and errors, rejected upgrades by reason\n"
    "  POST /faults/reset               TCP reset of every connection (SO_LINGER 0)\n"
    "  POST /faults/close?code=N&reason=TEXT   close every connection with code N\n"
    "  POST /faults/silence?ms=T        stop reading and answering pings for T ms\n"
    "  POST /faults/reject?status=S&retry_after=R&ms=T   answer upgrades with S for T ms\n"
    "  POST /tokens/expire?token=X      expire a token (or all=1); its connections close 4001\n"
    "  POST /sessions/ID/push           body = one downlink message for session ID (the\n"
    "                                   authenticated endpoint a backend pushes downlink to)\n"
    "  POST /sessions/ID/desired[?expect=V]  body = a JSON merge patch of the desired\n"
    "                                   document (only when it is at version V): 200\n"
    "                                   {version}, 409 {version} when it is not at V\n"
    "  GET  /sessions/ID/state          the desired and reported documents, their versions,\n"
    "                                   desired_applied and the delta\n"
    "  POST /quit                       as SIGTERM\n"
    "\n"
    "SIGTERM/SIGINT: close every connection with 1001, sync the store, exit 0.\n"
    "Exit codes: 0 stopped cleanly, 1 runtime failure (listener, store, TLS files), 2 usage.\n";

namespace {

bool parse_number(const char* text, std::uint64_t max, std::uint64_t* out) {
    if (text == nullptr || *text == '\0') {
        return false;
    }
    std::uint64_t value = 0;
    for (const char* p = text; *p != '\0'; ++p) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        value = value * 10 + static_cast<std::uint64_t>(*p - '0');
        if (value > max) {
            return false;
        }
    }
    *out = value;
    return true;
}

}  // namespace

bool parse_listen_address(const char* text, ListenAddress* out) {
    const char* colon = std::strrchr(text, ':');
    if (colon == nullptr || colon == text) {
        return false;
    }
    std::string host(text, static_cast<std::size_t>(colon - text));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    std::uint64_t port = 0;
    if (host.empty() || !parse_number(colon + 1, 65535, &port)) {
        return false;
    }
    out->enabled = true;
    out->host = host;
    out->port = static_cast<std::uint16_t>(port);
    return true;
}

bool parse_options(int argc, char** argv, Options* options, int* exit_code) {
    *exit_code = kExitUsage;
    (void)parse_listen_address("127.0.0.1:0", &options->admin);
    auto fail = [](const char* what, const char* value) {
        std::fprintf(stderr, "tether-server: %s%s%s (see --help)\n", what,
                     value != nullptr ? ": " : "", value != nullptr ? value : "");
        return false;
    };
    // The options that take a value (the others: --help, --version, --no-state).
    // clang-format off
    static const char* const kValueOptions[] = {
        "listen", "tls-listen", "admin", "cert", "key", "client-ca", "data-dir", "tokens",
        "admin-token-file", "admin-timeout-ms", "admin-max-connections", "ack-every",
        "ack-interval-ms", "ping-interval-ms", "ping-timeout-ms", "max-connections",
        "max-message-size", "replay-capacity", "store", "redis", "redis-sentinel",
        "redis-master", "redis-durability", "redis-wait-timeout-ms", "redis-prefix",
        "redis-uplink-maxlen", "instance-id", "max-open-sessions", "auth-max-failures",
        "auth-window-ms", "auth-penalty-ms", "auth-max-addresses"};
    // clang-format on
    cli::ArgReader args(argc, argv);
    while (args.next()) {
        if (args.is("help")) {
            std::fputs(kUsage, stdout);
            *exit_code = kExitOk;
            return false;
        }
        if (args.is("version")) {
            *exit_code = cli::print_version("tether-server");
            return false;
        }
        if (args.is("no-state")) {
            if (args.has_inline_value()) {
                cli::takes_no_value("tether-server", args.name());
                return false;
            }
            options->state = false;
            continue;
        }
        bool known = false;
        for (const char* name : kValueOptions) {
            known = known || std::strcmp(args.name(), name) == 0;
        }
        if (!args.is_option()) {
            cli::unexpected_argument("tether-server", args.text());
            return false;
        }
        if (!known) {
            cli::unknown_option("tether-server", args.text());
            return false;
        }
        const std::string arg = std::string("--") + args.name();
        const char* value = args.value();
        if (value == nullptr) {
            cli::needs_value("tether-server", args.name());
            return false;
        }
        std::uint64_t number = 0;
        auto number_option = [&](std::uint64_t min, std::uint64_t max) {
            return parse_number(value, max, &number) && number >= min;
        };
        if (arg == "--listen") {
            if (!parse_listen_address(value, &options->listen)) {
                return fail("bad --listen", value);
            }
        } else if (arg == "--tls-listen") {
            if (!parse_listen_address(value, &options->tls_listen)) {
                return fail("bad --tls-listen", value);
            }
        } else if (arg == "--admin") {
            if (!parse_listen_address(value, &options->admin)) {
                return fail("bad --admin", value);
            }
        } else if (arg == "--cert") {
            options->cert_file = value;
        } else if (arg == "--key") {
            options->key_file = value;
        } else if (arg == "--client-ca") {
            options->client_ca_file = value;
        } else if (arg == "--data-dir") {
            options->data_dir = value;
        } else if (arg == "--tokens") {
            options->tokens_file = value;
        } else if (arg == "--admin-token-file") {
            options->admin_token_file = value;
        } else if (arg == "--admin-timeout-ms") {
            if (!number_option(10, 86400000)) {
                return fail("bad --admin-timeout-ms", value);
            }
            options->admin_timeout_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--admin-max-connections") {
            if (!number_option(1, 4096)) {
                return fail("bad --admin-max-connections", value);
            }
            options->admin_max_connections = static_cast<std::size_t>(number);
        } else if (arg == "--ack-every") {
            if (!number_option(1, 1000000)) {
                return fail("bad --ack-every", value);
            }
            options->ack_every = static_cast<std::uint32_t>(number);
        } else if (arg == "--ack-interval-ms") {
            if (!number_option(0, 86400000)) {
                return fail("bad --ack-interval-ms", value);
            }
            options->ack_interval_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--ping-interval-ms") {
            if (!number_option(10, 86400000)) {
                return fail("bad --ping-interval-ms", value);
            }
            options->ping_interval_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--ping-timeout-ms") {
            if (!number_option(10, 86400000)) {
                return fail("bad --ping-timeout-ms", value);
            }
            options->ping_timeout_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--max-connections") {
            if (!number_option(1, 1000000)) {
                return fail("bad --max-connections", value);
            }
            options->max_connections = static_cast<std::size_t>(number);
        } else if (arg == "--max-message-size") {
            if (!number_option(64, 16u * 1024u * 1024u)) {
                return fail("bad --max-message-size", value);
            }
            options->max_message_size = static_cast<std::size_t>(number);
        } else if (arg == "--replay-capacity") {
            if (!number_option(1, 1000000)) {
                return fail("bad --replay-capacity", value);
            }
            options->replay_capacity = static_cast<std::size_t>(number);
        } else if (arg == "--store") {
            if (std::strcmp(value, "file") == 0) {
                options->store = Options::Store::kFile;
            } else if (std::strcmp(value, "redis") == 0) {
                options->store = Options::Store::kRedis;
            } else {
                return fail("bad --store (file or redis)", value);
            }
        } else if (arg == "--redis") {
            if (!parse_listen_address(value, &options->redis)) {
                return fail("bad --redis", value);
            }
        } else if (arg == "--redis-sentinel") {
            // Repeatable, and each may be a comma-separated list.
            const std::string list = value;
            std::size_t start = 0;
            while (start <= list.size()) {
                const std::size_t comma = std::min(list.find(',', start), list.size());
                ListenAddress sentinel;
                if (!parse_listen_address(list.substr(start, comma - start).c_str(), &sentinel)) {
                    return fail("bad --redis-sentinel", value);
                }
                options->sentinels.push_back(sentinel);
                start = comma + 1;
            }
        } else if (arg == "--redis-master") {
            options->redis_master = value;
        } else if (arg == "--redis-durability") {
            if (std::strcmp(value, "reply") == 0) {
                options->redis_replicas = 0;
            } else if (std::strncmp(value, "replicas:", 9) == 0 &&
                       parse_number(value + 9, 64, &number) && number >= 1) {
                options->redis_replicas = static_cast<std::uint32_t>(number);
            } else {
                return fail("bad --redis-durability (reply or replicas:N)", value);
            }
        } else if (arg == "--redis-wait-timeout-ms") {
            if (!number_option(1, 600000)) {
                return fail("bad --redis-wait-timeout-ms", value);
            }
            options->redis_wait_timeout_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--redis-prefix") {
            if (*value == '\0' || std::strpbrk(value, "{} \t") != nullptr) {
                return fail("bad --redis-prefix (no braces or blanks)", value);
            }
            options->redis_prefix = value;
        } else if (arg == "--redis-uplink-maxlen") {
            if (!number_option(1, 1000000000000ull)) {
                return fail("bad --redis-uplink-maxlen", value);
            }
            options->redis_uplink_maxlen = number;
        } else if (arg == "--instance-id") {
            if (*value == '\0' || std::strpbrk(value, " \t") != nullptr) {
                return fail("bad --instance-id", value);
            }
            options->instance_id = value;
        } else if (arg == "--max-open-sessions") {
            if (!number_option(1, 1000000)) {
                return fail("bad --max-open-sessions", value);
            }
            options->max_open_sessions = static_cast<std::size_t>(number);
        } else if (arg == "--auth-max-failures") {
            if (!number_option(0, 1000000)) {
                return fail("bad --auth-max-failures", value);
            }
            options->auth_throttle.max_failures = static_cast<std::uint32_t>(number);
        } else if (arg == "--auth-window-ms") {
            if (!number_option(1, 86400000)) {
                return fail("bad --auth-window-ms", value);
            }
            options->auth_throttle.window_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--auth-penalty-ms") {
            if (!number_option(1, 86400000)) {
                return fail("bad --auth-penalty-ms", value);
            }
            options->auth_throttle.penalty_ms = static_cast<std::uint32_t>(number);
        } else if (arg == "--auth-max-addresses") {
            if (!number_option(1, 1000000)) {
                return fail("bad --auth-max-addresses", value);
            }
            options->auth_throttle.max_addresses = static_cast<std::size_t>(number);
        }
    }
    if (!options->listen.enabled && !options->tls_listen.enabled) {
        return fail("one of --listen and --tls-listen is required", nullptr);
    }
    if (options->tls_listen.enabled && (options->cert_file.empty() || options->key_file.empty())) {
        return fail("--tls-listen needs --cert and --key", nullptr);
    }
    if (options->data_dir.empty()) {
        return fail("--data-dir is required", nullptr);
    }
    if (options->store == Options::Store::kRedis &&
        options->redis.enabled == !options->sentinels.empty()) {
        return fail("--store redis needs one of --redis and --redis-sentinel", nullptr);
    }
    if (options->store == Options::Store::kFile &&
        (options->redis.enabled || !options->sentinels.empty())) {
        return fail("--redis and --redis-sentinel need --store redis", nullptr);
    }
    const std::string& admin = options->admin.host;
    if (admin != "::1" && admin != "localhost" && admin.rfind("127.", 0) != 0) {
        return fail("--admin must be a loopback address", admin.c_str());
    }
    return true;
}

}  // namespace tether::server

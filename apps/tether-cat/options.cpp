// SPDX-License-Identifier: MIT
#include "options.h"

#include "cli.h"
#include "tether/ascii.h"
#include "tether/net/pin.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace tether::cat {
namespace {

// One option: its name and whether it takes a value.
struct Spec {
    const char* name;
    bool takes_value;
};

constexpr Spec kSpecs[] = {
    {"help", false},
    {"version", false},
    {"once", false},
    {"echo", false},
    {"binary", false},
    {"quiet", false},
    {"verbose", false},
    {"insecure", false},
    {"ping-interval", true},
    {"pong-timeout", true},
    {"max-missed-pongs", true},
    {"backoff-initial", true},
    {"backoff-max", true},
    {"backoff-multiplier", true},
    {"jitter", true},
    {"max-retries", true},
    {"healthy-after", true},
    {"connect-timeout", true},
    {"handshake-timeout", true},
    {"max-message-size", true},
    {"outbox-size", true},
    {"overflow", true},
    {"binary-output", true},
    {"ca-file", true},
    {"cert", true},
    {"key", true},
    {"pin-sha256", true},
    {"header", true},
    {"subprotocol", true},
    {"token-file", true},
    {"token-command", true},
    {"tether-v1", false},
    {"state-dir", true},
    {"device-id", true},
    {"user", true},
    {"desired-out", true},
    {"report-file", true},
    {"linger", true},
    {"keep-open", false},
    {"proxy", true},
    {"no-proxy", false},
    {"no-proxy-for", true},
    {"proxy-timeout", true},
    {"compress", false},
    {"compress-threshold", true},
    {"no-context-takeover", false},
    {"window-bits", true},
};

bool fail(char* error, std::size_t capacity, const char* format, const char* a,
          const char* b = "") {
    std::snprintf(error, capacity, format, a, b);
    return false;
}

// Parses a decimal integer in [min, max].
bool parse_u32(const char* text, std::uint32_t min, std::uint32_t max, std::uint32_t* out) {
    if (text == nullptr || *text == '\0') {
        return false;
    }
    std::uint64_t value = 0;
    for (const char* c = text; *c != '\0'; ++c) {
        if (*c < '0' || *c > '9') {
            return false;
        }
        value = value * 10u + static_cast<std::uint64_t>(*c - '0');
        if (value > max) {
            return false;
        }
    }
    if (value < min) {
        return false;
    }
    *out = static_cast<std::uint32_t>(value);
    return true;
}

// "2", "1.5", "1.25": a multiplier in thousandths, 1.0 to 10.0.
bool parse_multiplier(const char* text, std::uint32_t* permille) {
    std::uint32_t whole = 0;
    std::uint32_t fraction = 0;
    std::uint32_t scale = 1000;
    const char* c = text;
    if (*c < '0' || *c > '9') {
        return false;
    }
    for (; *c >= '0' && *c <= '9'; ++c) {
        whole = whole * 10u + static_cast<std::uint32_t>(*c - '0');
        if (whole > 10u) {
            return false;
        }
    }
    if (*c == '.') {
        ++c;
        if (*c == '\0') {
            return false;
        }
        for (; *c >= '0' && *c <= '9'; ++c) {
            if (scale > 1u) {
                scale /= 10u;
                fraction += static_cast<std::uint32_t>(*c - '0') * scale;
            }
        }
    }
    if (*c != '\0') {
        return false;
    }
    const std::uint32_t value = whole * 1000u + fraction;
    if (value < 1000u || value > 10000u) {
        return false;
    }
    *permille = value;
    return true;
}

bool apply(const char* name, const char* value, Options* o, char* error, std::size_t capacity) {
    ReconnectConfig& r = o->client.reconnect;
    std::uint32_t number = 0;
    auto number_in = [&](std::uint32_t min, std::uint32_t max, std::uint32_t* field) {
        if (!parse_u32(value, min, max, &number)) {
            char range[64];
            std::snprintf(range, sizeof range, "%u..%u", static_cast<unsigned>(min),
                          static_cast<unsigned>(max));
            return fail(error, capacity, "--%s: expected a whole number in %s", name, range);
        }
        *field = number;
        return true;
    };
    constexpr std::uint32_t kDay = 24u * 60u * 60u * 1000u;
    if (std::strcmp(name, "help") == 0) {
        o->help = true;
    } else if (std::strcmp(name, "version") == 0) {
        o->version = true;
    } else if (std::strcmp(name, "once") == 0) {
        o->once = true;
    } else if (std::strcmp(name, "echo") == 0) {
        o->echo = true;
    } else if (std::strcmp(name, "keep-open") == 0) {
        o->keep_open = true;
    } else if (std::strcmp(name, "binary") == 0) {
        o->binary = true;
        o->client.message_type = net::WsOpcode::kBinary;
    } else if (std::strcmp(name, "quiet") == 0) {
        o->quiet = true;
    } else if (std::strcmp(name, "verbose") == 0) {
        o->verbose = true;
    } else if (std::strcmp(name, "insecure") == 0) {
        o->tls.insecure = true;
    } else if (std::strcmp(name, "ping-interval") == 0) {
        return number_in(0, kDay, &r.heartbeat.interval_ms);
    } else if (std::strcmp(name, "pong-timeout") == 0) {
        return number_in(1, kDay, &r.heartbeat.pong_timeout_ms);
    } else if (std::strcmp(name, "max-missed-pongs") == 0) {
        return number_in(1, 100, &r.heartbeat.max_missed_pongs);
    } else if (std::strcmp(name, "backoff-initial") == 0) {
        return number_in(1, kDay, &r.backoff.initial_delay_ms);
    } else if (std::strcmp(name, "backoff-max") == 0) {
        return number_in(1, kDay, &r.backoff.max_delay_ms);
    } else if (std::strcmp(name, "backoff-multiplier") == 0) {
        if (!parse_multiplier(value, &r.backoff.multiplier_permille)) {
            return fail(error, capacity, "--%s: expected a number from 1 to 10, like 2 or 1.5",
                        name);
        }
    } else if (std::strcmp(name, "jitter") == 0) {
        if (!parse_jitter_mode(value, &r.backoff.jitter)) {
            return fail(error, capacity, "--%s: expected none, full, equal or decorrelated", name);
        }
    } else if (std::strcmp(name, "max-retries") == 0) {
        return number_in(0, 0xFFFFFFFEu, &r.backoff.max_attempts);
    } else if (std::strcmp(name, "healthy-after") == 0) {
        return number_in(0, kDay, &r.backoff.healthy_after_ms);
    } else if (std::strcmp(name, "connect-timeout") == 0) {
        return number_in(1, kDay, &r.connect_timeout_ms);
    } else if (std::strcmp(name, "handshake-timeout") == 0) {
        if (!number_in(1, kDay, &r.handshake_timeout_ms)) {
            return false;
        }
        r.tls_timeout_ms = r.handshake_timeout_ms;
        r.resume_timeout_ms = r.handshake_timeout_ms;
    } else if (std::strcmp(name, "max-message-size") == 0) {
        std::uint32_t size = 0;
        if (!number_in(1, 16u * 1024u * 1024u, &size)) {
            return false;
        }
        o->client.ws.max_message_size = size;
    } else if (std::strcmp(name, "outbox-size") == 0) {
        std::uint32_t size = 0;
        if (!number_in(1024, 256u * 1024u * 1024u, &size)) {
            return false;
        }
        o->outbox_bytes = size;
    } else if (std::strcmp(name, "overflow") == 0) {
        if (!parse_overflow_policy(value, &o->client.overflow)) {
            return fail(error, capacity, "--%s: expected drop_oldest or reject_newest", name);
        }
        o->overflow_given = true;
    } else if (std::strcmp(name, "binary-output") == 0) {
        if (std::strcmp(value, "raw") == 0) {
            o->binary_output = BinaryOutput::kRaw;
        } else if (std::strcmp(value, "base64") == 0) {
            o->binary_output = BinaryOutput::kBase64;
        } else {
            return fail(error, capacity, "--%s: expected raw or base64", name);
        }
    } else if (std::strcmp(name, "ca-file") == 0) {
        o->tls.ca_file = value;
    } else if (std::strcmp(name, "cert") == 0) {
        o->tls.client_cert_file = value;
    } else if (std::strcmp(name, "key") == 0) {
        o->tls.client_key_file = value;
    } else if (std::strcmp(name, "pin-sha256") == 0) {
        if (!net::parse_sha256_pin(value, o->tls.pin_sha256)) {
            return fail(error, capacity, "--%s: expected 64 hex digits or 44 base64 characters",
                        name);
        }
        o->tls.has_pin = true;
    } else if (std::strcmp(name, "header") == 0) {
        if (o->header_count == Options::kMaxHeaders) {
            return fail(error, capacity, "--%s: at most 16 headers", name);
        }
        o->headers[o->header_count++] = value;
    } else if (std::strcmp(name, "subprotocol") == 0) {
        if (o->subprotocol_count == Options::kMaxSubprotocols) {
            return fail(error, capacity, "--%s: at most 8 subprotocols", name);
        }
        o->subprotocols[o->subprotocol_count++] = value;
    } else if (std::strcmp(name, "linger") == 0) {
        return number_in(0, kDay, &o->linger_ms);
    } else if (std::strcmp(name, "tether-v1") == 0) {
        o->tether_v1 = true;
        o->client.reconnect.resume_protocol = true;
    } else if (std::strcmp(name, "state-dir") == 0) {
        o->state_dir = value;
    } else if (std::strcmp(name, "device-id") == 0) {
        o->device_id = value;
    } else if (std::strcmp(name, "user") == 0) {
        o->user = value;
    } else if (std::strcmp(name, "desired-out") == 0) {
        o->desired_out = value;
    } else if (std::strcmp(name, "report-file") == 0) {
        o->report_file = value;
    } else if (std::strcmp(name, "token-command") == 0) {
        o->token_command = value;
    } else if (std::strcmp(name, "token-file") == 0) {
        o->token_file = value;
    } else if (std::strcmp(name, "proxy") == 0) {
        o->proxy = value;
    } else if (std::strcmp(name, "no-proxy") == 0) {
        o->no_proxy = true;
    } else if (std::strcmp(name, "no-proxy-for") == 0) {
        o->no_proxy_for = value;
    } else if (std::strcmp(name, "proxy-timeout") == 0) {
        return number_in(1, kDay, &r.proxy_timeout_ms);
    } else if (std::strcmp(name, "compress") == 0) {
        o->compress = true;
    } else if (std::strcmp(name, "compress-threshold") == 0) {
        std::uint32_t threshold = 0;
        if (!number_in(0, 16u * 1024u * 1024u, &threshold)) {
            return false;
        }
        o->client.deflate_threshold = threshold;
    } else if (std::strcmp(name, "no-context-takeover") == 0) {
        o->client.deflate_offer.client_no_context_takeover = true;
        o->client.deflate_offer.server_no_context_takeover = true;
    } else if (std::strcmp(name, "window-bits") == 0) {
        std::uint32_t bits = 0;
        if (!number_in(9, 15, &bits)) {
            return false;
        }
        o->window_bits = static_cast<std::uint8_t>(bits);
        o->client.deflate_offer.client_max_window_bits = o->window_bits;
        o->client.deflate_offer.server_max_window_bits = o->window_bits;
    }
    return true;
}

}  // namespace

bool parse_options(int argc, char** argv, Options* o, char* error, std::size_t capacity) {
    // tether-cat works on unreliable links by default: reconnect forever, every attempt counted.
    o->client.reconnect.backoff.jitter = JitterMode::kFull;
    cli::ArgReader args(argc, argv);
    while (args.next()) {
        const char* arg = args.text();
        if (!args.is_option()) {
            if (o->client.url_count == EndpointPool::kMaxEndpoints) {
                return fail(error, capacity, "at most 8 URLs%s", "");
            }
            o->client.urls[o->client.url_count++] = arg;
            continue;
        }
        const char* name = args.is("help") ? "help" : args.name();
        const Spec* spec = nullptr;
        for (const Spec& candidate : kSpecs) {
            if (std::strcmp(candidate.name, name) == 0) {
                spec = &candidate;
            }
        }
        if (spec == nullptr) {
            cli::unknown_option_message(arg, error, capacity);
            return false;
        }
        const char* value = nullptr;
        if (spec->takes_value) {
            value = args.value();
            if (value == nullptr) {
                cli::needs_value_message(name, error, capacity);
                return false;
            }
        } else if (args.has_inline_value()) {
            cli::takes_no_value_message(name, error, capacity);
            return false;
        }
        if (!apply(name, value, o, error, capacity)) {
            return false;
        }
    }
    if (o->help || o->version) {
        return true;
    }
    if (o->client.url_count == 0) {
        return fail(error, capacity, "give at least one ws:// or wss:// URL (see --help)%s", "");
    }
    if ((o->tls.client_cert_file == nullptr) != (o->tls.client_key_file == nullptr)) {
        return fail(error, capacity, "--cert and --key go together%s", "");
    }
    if (o->client.reconnect.backoff.max_delay_ms < o->client.reconnect.backoff.initial_delay_ms) {
        return fail(error, capacity, "--backoff-max must not be below --backoff-initial%s", "");
    }
    if ((o->desired_out != nullptr || o->report_file != nullptr) &&
        (!o->tether_v1 || o->state_dir == nullptr)) {
        return fail(error, capacity,
                    "--desired-out and --report-file need --tether-v1 and --state-dir%s", "");
    }
    if (o->client.ws.max_message_size > o->outbox_bytes) {
        o->outbox_bytes = o->client.ws.max_message_size + 64;
    }
    o->client.extra_headers = o->headers;
    o->client.extra_header_count = o->header_count;
    o->client.subprotocols = o->subprotocols;
    o->client.subprotocol_count = o->subprotocol_count;
    o->client.require_subprotocol = o->subprotocol_count > 0;
    if (o->once) {
        o->client.reconnect.backoff.max_attempts = 1;
    }
    return true;
}

namespace {

// The first of two variables that is set and not empty; *name gets which.
const char* from_environment(EnvLookup lookup, const char* lower, const char* upper,
                             const char** name) {
    for (const char* candidate : {lower, upper}) {
        const char* value = lookup(candidate);
        if (value != nullptr && *value != '\0') {
            *name = candidate;
            return value;
        }
    }
    return nullptr;
}

}  // namespace

bool resolve_proxy(Options* o, EnvLookup lookup, char* error, std::size_t capacity) {
    o->client.proxy = nullptr;
    o->client.no_proxy = nullptr;
    o->proxy_source = nullptr;
    if (o->no_proxy) {
        return true;
    }
    const char* text = o->proxy;
    const char* source = "--proxy";
    if (text == nullptr) {
        bool any_tls = false;
        bool any_plain = false;
        static net::WsUrl url;  // start-up only, single-threaded
        for (std::size_t i = 0; i < o->client.url_count; ++i) {
            if (net::parse_ws_url(o->client.urls[i], &url) == net::UrlStatus::kOk) {
                any_tls = any_tls || url.tls;
                any_plain = any_plain || !url.tls;
            }
        }
        const char* https_name = "https_proxy";
        const char* http_name = "http_proxy";
        const char* https =
            any_tls ? from_environment(lookup, "https_proxy", "HTTPS_PROXY", &https_name) : nullptr;
        const char* http =
            any_plain ? from_environment(lookup, "http_proxy", "HTTP_PROXY", &http_name) : nullptr;
        const bool differ = (https == nullptr) != (http == nullptr) ||
                            (https != nullptr && http != nullptr && std::strcmp(https, http) != 0);
        if (any_tls && any_plain && differ) {
            std::snprintf(error, capacity,
                          "ws:// and wss:// URLs would use different proxies (%s, %s): give "
                          "--proxy or --no-proxy",
                          https_name, http_name);
            return false;
        }
        text = any_tls ? https : http;
        source = any_tls ? https_name : http_name;
    }
    if (text == nullptr) {
        return true;
    }
    const net::ProxyUrlStatus status = net::parse_proxy_url(text, &o->proxy_url);
    if (status != net::ProxyUrlStatus::kOk) {
        // The value is not repeated: it may hold a password.
        std::snprintf(error, capacity, "%s: expected http://[user:password@]host[:port] (%s)",
                      source, net::to_string(status));
        return false;
    }
    o->client.proxy = &o->proxy_url;
    o->proxy_source = source;
    const char* no_proxy_name = "no_proxy";
    o->client.no_proxy = o->no_proxy_for != nullptr
                             ? o->no_proxy_for
                             : from_environment(lookup, "no_proxy", "NO_PROXY", &no_proxy_name);
    return true;
}

const char* usage_text() {
    return R"(usage: tether-cat [options] URL [URL...]

Connects to a WebSocket server (ws:// or wss://) and keeps the link up through
network faults. Each line of standard input becomes one message; each message
received is written to standard output as one line. State changes and errors
go to standard error as logfmt lines. Several URLs are tried in order of
priority: the first is the primary, the others are failover endpoints.

Connection:
  --once                     connect once: no reconnection; exit when the link ends
  --connect-timeout MS       TCP connect timeout per address (default 10000)
  --handshake-timeout MS     TLS and HTTP upgrade timeout (default 10000)
  --header "Name: value"     extra request header (repeatable)
  --subprotocol NAME         offer a subprotocol; the server must select one (repeatable)
  --token-file PATH          send "Authorization: Bearer <first line of PATH>";
                             re-read for every connection attempt
  --token-command CMD        the same from the first line CMD prints (run by /bin/sh at
                             start and again, in the background, when the server
                             rejects the token: 401/403, close 4001)

Compression (permessage-deflate, RFC 7692; off by default):
  --compress                 offer permessage-deflate; a server that accepts gets
                             compressed messages and may send compressed ones
  --compress-threshold BYTES send messages shorter than BYTES uncompressed (default 0)
  --no-context-takeover      both sides reset their window after every message:
                             less memory kept between messages, fewer bytes saved
  --window-bits N            largest LZ77 window either way, 9 to 15 (default 15);
                             zlib memory per connection: 304 KiB at 15, 52 KiB at 12,
                             20.5 KiB at 9 (docs/ARCHITECTURE.md)

Reconnection:
  --backoff-initial MS       first retry delay (default 1000)
  --backoff-max MS           delay cap (default 32000)
  --backoff-multiplier X     growth per attempt, 1 to 10 (default 2)
  --jitter MODE              none, full, equal or decorrelated (default full)
  --max-retries N            give up after N consecutive attempts; 0 = never (default 0)
  --healthy-after MS         a link up this long resets the backoff (default 10000)

Liveness:
  --ping-interval MS         ping after this long without receiving; 0 = off (default 30000)
  --pong-timeout MS          a ping unanswered this long is missed (default 10000)
  --max-missed-pongs N       misses before the link is declared dead (default 1)

Messages:
  --binary                   send input lines as binary messages (default text)
  --echo                     send every received message back, as the same frame type
                             (text as text, binary as binary; implies --keep-open)
  --binary-output MODE       how a received binary message is written to standard
                             output: raw (its bytes, then a newline: ambiguous when it
                             holds a newline) or base64 (one line of RFC 4648 base64).
                             Text messages are always their text and a newline.
  --keep-open                stay connected after input ends, until the server closes
                             or a signal arrives
  --linger MS                after input ends and is sent, wait until no message has
                             arrived for MS before closing (default 0: close at once)
  --max-message-size BYTES   largest WebSocket message either way (default 65536): a
                             bigger incoming one closes with 1009; an input line that
                             could not be sent within it (with --tether-v1, its 14-byte
                             header with the message's age counts) is refused,
                             reported, and makes the exit status 6
  --outbox-size BYTES        memory for messages waiting to be sent (default 1048576)
  --overflow POLICY          read input as fast as it comes and, when the outbox is full,
                             drop_oldest or reject_newest (default: no overflow at all:
                             input is read only while the outbox has room)

HTTP proxy (CONNECT): TLS to the server runs through the tunnel, verified
against the server's name, never the proxy's.
  --proxy URL                http://[user:password@]host[:port] (port default 80; user
                             and password percent-encoded). Default: $https_proxy (or
                             $HTTPS_PROXY) for wss:// URLs, $http_proxy (or $HTTP_PROXY)
                             for ws:// URLs. A password on the command line is visible
                             to other users (ps): prefer the environment
  --no-proxy                 connect directly, whatever the environment says
  --no-proxy-for LIST        hosts reached directly, instead of $no_proxy ($NO_PROXY):
                             comma-separated; a name matches itself and the names
                             below it (a leading dot changes nothing), an IP literal
                             only itself, * everything; each may end in :PORT
  --proxy-timeout MS         wait for the proxy's answer to CONNECT (default 10000)

TLS (wss://): verification is always on unless --insecure.
  --ca-file PATH             trusted CAs (PEM; default: the system bundle)
  --cert PATH --key PATH     client certificate and key (mutual TLS)
  --pin-sha256 PIN           also require this SHA-256 of the server's public key
                             (64 hex digits or base64)
  --insecure                 do not verify the server at all (a warning on every connect)

Session resume (tether.v1, docs/PROTOCOL.md): nothing lost or delivered twice
  --tether-v1                speak tether.v1: seqs, acknowledgements, resume after reconnects
  --state-dir DIR            keep the persistent state record here (mode 0700), so a
                             restarted process resumes its session and its backoff
  --device-id ID             this device's name and fingerprint (default: /etc/machine-id)
  --user NAME                the user the session belongs to (default tether); the session
                             id is the UUIDv5 of user and device fingerprint

Device state (tether.v1 "state", docs/PROTOCOL.md section 9; needs --tether-v1 and
--state-dir, which then also holds the file device-state). Either option offers it.
  --desired-out FILE         each desired change from the server is applied by
                             replacing FILE atomically (FILE.tmp, fsync, rename,
                             fsync of the directory) with one line
                             {"version":N,"desired":{...}}, the whole desired
                             document; only then is version N confirmed to the
                             server. A write that fails is logged and tried again
                             every second. The version applied survives restarts.
  --report-file FILE         FILE holds one JSON object: the device's whole reported
                             state. It is reported at start and whenever FILE
                             changes (looked at every second; replace it with
                             mv for an atomic change). A refusal is logged
                             (level=error event=report) once, later ones are
                             counted; when another writer was first (stale), the
                             file is reported again once on the new version.
                             Before exiting after input ends, tether-cat waits for
                             the answer to a report in flight on a connection that
                             negotiated state (use --keep-open or --linger to give
                             it time to connect first).

Output:
  --quiet                    only errors on standard error
  --verbose                  every state change, including each attempt's phases

  -h, --help                 this text
  --version                  print "tether-cat VERSION" and exit
  Every option that takes a value accepts --option VALUE and --option=VALUE.

Exit codes:
  0  input ended, every message was sent, the link closed cleanly
  1  a resource of the operating system failed (entropy, sockets)
  2  bad usage
  3  gave up: --max-retries reached, or the session was superseded (close 4009)
  4  gave up because the server's certificate did not verify
  5  --once: the connection failed for another reason
  6  input ended and the rest was sent, but a line was refused as too large
)";
}

}  // namespace tether::cat

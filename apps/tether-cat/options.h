// SPDX-License-Identifier: MIT
// tether-cat's command line.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/client.h"
#include "tether/port/posix_transport.h"

namespace tether::cat {

/// Exit codes, documented in --help.
enum ExitCode : int {
    kExitOk = 0,             ///< input ended, everything sent, closed cleanly
    kExitRuntime = 1,        ///< an operating-system resource failed (entropy, sockets)
    kExitUsage = 2,          ///< bad command line or configuration
    kExitGaveUp = 3,         ///< stopped reconnecting: max retries, or superseded
    kExitTlsVerify = 4,      ///< gave up (or --once failed) because a certificate did not verify
    kExitConnectFailed = 5,  ///< --once: the only attempt failed for another reason
    kExitRefused = 6,        ///< a line was larger than the link can deliver
};

/// How received binary messages are written to standard output.
enum class BinaryOutput { kRaw, kBase64 };

struct Options {
    static constexpr std::size_t kMaxHeaders = 16;
    static constexpr std::size_t kMaxSubprotocols = 8;

    ClientConfig client;
    port::TlsSettings tls;
    const char* headers[kMaxHeaders] = {};
    std::size_t header_count = 0;
    const char* subprotocols[kMaxSubprotocols] = {};
    std::size_t subprotocol_count = 0;
    const char* token_file = nullptr;
    const char* token_command = nullptr;
    // tether.v1
    bool tether_v1 = false;
    const char* state_dir = nullptr;
    const char* device_id = nullptr;
    const char* user = "tether";
    // Device state (tether.v1 "state"): either option turns it on.
    const char* desired_out = nullptr;
    const char* report_file = nullptr;
    std::size_t outbox_bytes = 1024 * 1024;
    std::uint32_t linger_ms = 0;
    bool once = false;
    bool echo = false;
    bool keep_open = false;
    bool overflow_given = false;  ///< --overflow: read input freely, the policy drops or refuses
    bool binary = false;
    BinaryOutput binary_output = BinaryOutput::kRaw;
    bool quiet = false;
    bool verbose = false;
    bool help = false;
    bool version = false;
    // HTTP proxy (resolve_proxy()): --proxy beats the environment, --no-proxy both.
    const char* proxy = nullptr;         ///< --proxy URL
    const char* no_proxy_for = nullptr;  ///< --no-proxy-for LIST, beats $no_proxy
    bool no_proxy = false;               ///< --no-proxy
    const char* proxy_source = nullptr;  ///< "--proxy", "https_proxy", ... once resolved
    net::ProxyUrl proxy_url;             ///< what client.proxy points to
    // permessage-deflate (--compress): the offer is in client.deflate_offer,
    // client.deflate_threshold; main() supplies the deflater.
    bool compress = false;
    std::uint8_t window_bits = 15;  ///< --window-bits: both directions' largest window
};

/// How resolve_proxy() reads the environment (std::getenv in main).
using EnvLookup = const char* (*)(const char* name);

/// Parses argv into *options. Returns true, or false with a message for the
/// user in `error`.
bool parse_options(int argc, char** argv, Options* options, char* error, std::size_t capacity);

/// Chooses the proxy after parse_options(): --no-proxy, else --proxy, else
/// the conventional variables for the URLs' scheme (https_proxy, then
/// HTTPS_PROXY, for wss://; http_proxy, then HTTP_PROXY, for ws://; empty
/// counts as unset); no_proxy (then NO_PROXY) unless --no-proxy-for. Sets
/// client.proxy and client.no_proxy. False with a message in `error` (which
/// names the option or variable, never its value) for an unusable URL, or for
/// ws:// and wss:// URLs whose variables name different proxies.
bool resolve_proxy(Options* options, EnvLookup lookup, char* error, std::size_t capacity);

/// The --help text.
const char* usage_text();

}  // namespace tether::cat

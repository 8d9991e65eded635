// SPDX-License-Identifier: MIT
// tetherd's configuration: one JSON file (docs/CONFIG.md), a few
// command-line overrides, and the mapping onto the library's ClientConfig.
//
// The parser is strict: an unknown field, a wrong type, a value out of range
// or a contradiction (a client certificate without its key, both a token file
// and a token command) is an error that names the field by its JSON path,
// e.g.
//   backoff.jitter: expected one of none, full, equal, decorrelated, got "sometimes"
// Nothing is silently ignored, and a field that is absent keeps the default
// shown in the struct below (and in docs/CONFIG.md, which a unit test keeps
// identical to the parser's list of fields, config_fields()).
//
// Memory: the configuration is read once at start-up and may allocate
// (std::string, std::vector); nothing here runs per message.
//
// Example (main):
//   tether::daemon::DaemonConfig config;
//   std::string error;
//   if (!tether::daemon::load_config_file(path, &config, &error)) { die(error); }
//   for (each --name value) {
//       if (!tether::daemon::apply_override(&config, name, value, &error)) { die(error); }
//   }
//   log_info("tetherd: %s", tether::daemon::describe(config).c_str());
//   tether::ClientConfig client;
//   tether::port::TlsSettings tls;
//   tether::daemon::to_link_settings(config, &settings);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tether/backoff.h"
#include "tether/client.h"
#include "tether/outbox.h"
#include "tether/port/posix_link.h"
#include "tether/port/posix_transport.h"

namespace tether::daemon {

enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarn, kError };
/// "debug", "info", "warn", "error"; "unknown" for any other value.
const char* to_string(LogLevel level);
/// Parses the names above; false (leaving *level alone) for anything else.
bool parse_log_level(const char* text, LogLevel* level);

enum class DownlinkMode : std::uint8_t {
    kStdout,   ///< one line per message on standard output
    kCommand,  ///< each message on the standard input of `downlink.command`
};
/// "stdout", "command"; "unknown" for any other value.
const char* to_string(DownlinkMode output);

/// Empty strings below mean "not set" (null in the file).
struct TlsOptions {
    std::string ca_file;    ///< PEM CA bundle; empty: the system bundle
    std::string cert_file;  ///< client certificate (mutual TLS); with key_file
    std::string key_file;   ///< its private key; with cert_file
    bool has_pin = false;
    std::uint8_t pin_sha256[32] = {};  ///< SHA-256 of the server's SubjectPublicKeyInfo
    bool insecure = false;             ///< no verification at all (never with a pin)
};

struct CredentialsOptions {
    std::string token_file;     ///< bearer token file, re-read on refresh
    std::string token_command;  ///< command printing the token; never logged
    /// NAME when token_file was "credential:NAME" (set by resolve_paths()).
    std::string token_credential;
};

struct SessionOptions {
    std::string user = "tether";           ///< the user id in the session id (docs/PROTOCOL.md)
    std::string device_id;                 ///< empty: /etc/machine-id
    std::uint32_t ack_every = 64;          ///< ClientConfig::ack_every
    std::uint32_t ack_interval_ms = 200;   ///< ClientConfig::ack_interval_ms
    std::uint32_t seq_reservation = 1024;  ///< ClientConfig::seq_reservation
};

struct TimeoutOptions {
    std::uint32_t resolve_ms = 10000;
    std::uint32_t connect_ms = 10000;  ///< per address
    std::uint32_t tls_ms = 15000;
    std::uint32_t handshake_ms = 10000;  ///< upgrade request to 101
    std::uint32_t resume_ms = 10000;     ///< hello to welcome
    std::uint32_t close_ms = 5000;       ///< our close frame to the peer's
};

struct OutboxOptions {
    std::size_t size_bytes = 262144;
    OverflowPolicy overflow = OverflowPolicy::kDropOldest;
    std::size_t max_message_size = 65536;  ///< both directions
};

struct SpoolOptions {
    bool enabled = false;
    std::uint32_t max_bytes = 8u * 1024u * 1024u;  ///< SpoolConfig::max_bytes: 32-bit offsets
    std::uint32_t fsync_interval_ms = 1000;        ///< 0: after every record
};

struct HealthOptions {
    bool enabled = true;
    std::uint32_t period_ms = 10000;
    std::string root = "/";               ///< where /sys and /proc are found
    std::vector<std::string> interfaces;  ///< empty: all
};

struct InputOptions {
    bool stdin_lines = false;  ///< "stdin": one message per line of standard input
    std::string socket;        ///< UNIX datagram socket path; empty: none; relative: in run_dir
    std::uint32_t socket_mode = 0660;  ///< "inputs.socket_mode": the socket's file mode
    HealthOptions health;
};

struct DownlinkOptions {
    DownlinkMode output = DownlinkMode::kStdout;
    std::string command;                       ///< required with kCommand, refused otherwise
    std::uint32_t command_timeout_ms = 10000;  ///< one run of `command`; killed after
    std::uint32_t retries = 3;                 ///< runs after the first before dead-lettering
    std::uint32_t retry_delay_ms = 1000;       ///< before the first retry, doubling
    /// Empty: state_dir + "/dead-letter" (follows state_dir, also through
    /// overrides); read it through dead_letter_dir().
    std::string dead_letter_dir;
};

/// The device-state extension (docs/PROTOCOL.md section 9, docs/CONFIG.md
/// "Device state"): how a desired change is applied and what is reported.
struct StateOptions {
    bool enabled = false;
    /// Apply by writing {"version":N,"desired":{...}} atomically to this file.
    std::string desired_file;
    /// Or by running this command: the document on its standard input;
    /// exit 0 applies it; a JSON object on its standard output is reported.
    std::string desired_command;
    std::uint32_t command_timeout_ms = 10000;
    std::uint32_t retry_delay_ms = 1000;  ///< before a failed apply is tried again, doubling
    /// Prints the device's state as a JSON object (a merge patch onto the
    /// reported document), at start and every report_interval_ms.
    std::string report_command;
    std::uint32_t report_interval_ms = 60000;  ///< 0: at start only
};

struct StatusOptions {
    /// Always a path after parsing: run_dir + "/status.json" unless set.
    std::string file = "/run/tether/status.json";
    bool file_set = false;  ///< false: follows run_dir (also through overrides)
    std::string led;        ///< LED name under led_root; empty: none
    std::string led_root = "/sys/class/leds";
};

struct MetricsOptions {
    std::string file;  ///< Prometheus textfile; empty: off
    std::uint32_t interval_ms = 10000;
};

struct WatchdogOptions {
    std::string device;  ///< e.g. /dev/watchdog; empty: off
    std::uint32_t interval_ms = 5000;
};

/// What the link speaks (docs/CONFIG.md "protocol").
enum class LinkProtocol : std::uint8_t {
    kTetherV1,   ///< "tether.v1": sessions, seqs, acknowledgements (docs/PROTOCOL.md)
    kWebSocket,  ///< "websocket": plain WebSocket to any server; see PlainOptions
};
const char* to_string(LinkProtocol protocol);

/// Plain WebSocket mode (protocol "websocket"): docs/CONFIG.md "plain".
struct PlainOptions {
    Delivery delivery = Delivery::kAtLeastOnce;
    std::string subprotocol;  ///< offered in the upgrade; empty: none
    bool binary = false;      ///< messages go as binary frames; false: text (UTF-8 checked)
    /// to_link_settings() points ClientConfig::subprotocols here.
    mutable const char* offered[1] = {nullptr};
};

/// An HTTP CONNECT proxy for the endpoints (docs/CONFIG.md "HTTP proxy").
/// Explicit only: tetherd reads no proxy environment variables.
struct ProxyOptions {
    std::string url;            ///< "http://host:port"; empty: no proxy. No credentials in it.
    std::string username;       ///< Basic user name; empty: none
    std::string password_file;  ///< the password's file (first line); a path or credential:NAME
    std::vector<std::string> no_proxy;  ///< endpoints reached directly (curl's no_proxy syntax)
    std::uint32_t timeout_ms = 10000;   ///< CONNECT sent to the proxy's answer
    /// Filled by the parser (host, port, user name) and resolve_paths() (the
    /// password, read from password_file); what the link uses. Never logged.
    net::ProxyUrl parsed;
    std::string no_proxy_list;  ///< no_proxy joined with commas
};

/// permessage-deflate (RFC 7692), "compression" in the file. Off by default:
/// with it on, each link holds one zlib arena of
/// ZlibDeflater::arena_size(max(client_max_window_bits, server_max_window_bits))
/// bytes (304 KiB at 15, 52 KiB at 12, 20.5 KiB at 9; docs/ARCHITECTURE.md).
struct CompressionOptions {
    bool enabled = false;                ///< "mode": "off" | "on"
    std::uint32_t threshold_bytes = 64;  ///< smaller messages are sent uncompressed
    bool client_no_context_takeover = false;
    bool server_no_context_takeover = false;
    std::uint32_t client_max_window_bits = 12;  ///< our compressor's window, 9..15
    std::uint32_t server_max_window_bits = 12;  ///< asked of the server, 9..15
};

struct DaemonConfig {
    std::vector<std::string> endpoints;  ///< 1..kMaxEndpoints, primary first
    TlsOptions tls;
    CredentialsOptions credentials;
    SessionOptions session;
    HeartbeatConfig heartbeat;
    BackoffConfig backoff;
    TimeoutOptions timeouts;
    EndpointPoolConfig endpoint_pool;
    OutboxOptions outbox;
    SpoolOptions spool;
    /// null in the file: $STATE_DIRECTORY, else this default (resolve_paths()).
    std::string state_dir = "/var/lib/tether";
    /// null in the file: $RUNTIME_DIRECTORY, else this default (resolve_paths()).
    std::string run_dir = "/run/tether";
    bool state_dir_set = false;  ///< given by the file or --state-dir: wins over the environment
    bool run_dir_set = false;    ///< given by the file or --run-dir: wins over the environment
    InputOptions inputs;
    DownlinkOptions downlink;
    StateOptions state;
    StatusOptions status;
    MetricsOptions metrics;
    WatchdogOptions watchdog;
    CompressionOptions compression;
    LogLevel log_level = LogLevel::kInfo;
    LinkProtocol protocol = LinkProtocol::kTetherV1;
    PlainOptions plain;  ///< protocol kWebSocket only
    /// Set by the first "endpoint" override: later ones append instead of replacing.
    bool endpoints_overridden = false;
    ProxyOptions proxy;
};

/// Where downlink messages that could not be handed over are kept:
/// downlink.dead_letter_dir, or state_dir + "/dead-letter" when not set.
std::string dead_letter_dir(const DaemonConfig& config);

inline constexpr std::size_t kMaxEndpoints = EndpointPool::kMaxEndpoints;
/// Config files larger than this are refused.
inline constexpr std::size_t kMaxConfigFileSize = 1024 * 1024;

/// Parses `size` bytes of JSON into *out (defaults first, then the file's
/// fields). `json` need not be NUL-terminated. Returns true on success; on
/// failure *out is unspecified and *error says why:
///   "<path>: <problem>"    for a field ("tls.key_file: required with tls.cert_file")
///   "config is empty"      for no bytes or only whitespace
///   "not JSON: syntax error at line L, column C (byte B)"
///   "not JSON: trailing characters at line L, column C (byte B)"
/// `error` may be null.
bool parse_config(const char* json, std::size_t size, DaemonConfig* out, std::string* error);

/// Reads `path` and parses it. Only a regular file of at most
/// kMaxConfigFileSize bytes is read: it is opened non-blocking and checked
/// with fstat first, so a FIFO, a device or a directory fails at once instead
/// of hanging or reading forever. On failure *error is "<path>: <problem>":
/// a parse_config() message, "cannot read: <strerror>", "larger than 1 MiB",
/// or "not a regular file (a FIFO)" (a directory, a character device, a
/// block device, a socket).
bool load_config_file(const char* path, DaemonConfig* out, std::string* error);

/// One command-line override.
struct OverrideSpec {
    const char* name;     ///< the flag without "--", e.g. "state-dir"
    const char* metavar;  ///< "URL", "DIR", ...; nullptr for a flag that takes no value
    const char* field;    ///< the JSON path it overrides
    const char* help;
};

/// Every override, in help order; *count gets their number.
const OverrideSpec* override_specs(std::size_t* count);
/// The spec of `name`, or nullptr when there is none.
const OverrideSpec* find_override(const char* name);

/// Applies "--name value" on top of a parsed configuration, validated like
/// the file's field. "endpoint" replaces the file's list on its first use and
/// appends on later ones; "token-file" and "token-command" replace each
/// other; "run-dir" moves the default status file along. Flags without a
/// metavar take `value` nullptr (or "true"/"false"). Returns false with
/// *error ("--log-level: expected one of debug, info, warn, error, got \"loud\"")
/// for an unknown name or a bad value, leaving *config unchanged.
bool apply_override(DaemonConfig* config, const char* name, const char* value, std::string* error);

/// Writes the overrides' help text (one line per flag, aligned) to `out`.
void print_override_help(std::FILE* out);

/// What the service manager hands the daemon (systemd.exec(5)): each empty
/// when not set. main() fills it from the environment; tests give their own.
struct ServiceEnvironment {
    std::string state_directory;        ///< $STATE_DIRECTORY (the first of a ':' list)
    std::string runtime_directory;      ///< $RUNTIME_DIRECTORY (the first of a ':' list)
    std::string credentials_directory;  ///< $CREDENTIALS_DIRECTORY (LoadCredential=)
};

/// The prefix naming a systemd credential instead of a path, in
/// credentials.token_file, tls.ca_file, tls.cert_file and tls.key_file:
/// "credential:token" is $CREDENTIALS_DIRECTORY/token.
inline constexpr const char* kCredentialPrefix = "credential:";

/// Completes a parsed (and overridden) configuration from the environment,
/// in this order of precedence: a command-line override, then a value in
/// the file, then the environment, then the built-in default.
///   - state_dir / run_dir not set: env.state_directory / runtime_directory
///     when given, else /var/lib/tether and /run/tether;
///   - status.file (unset: run_dir/status.json), metrics.file and
///     inputs.socket given as a relative path are taken inside run_dir;
///   - "credential:NAME" in the four fields above becomes
///     credentials_directory/NAME (NAME: a file name, no '/'); without
///     $CREDENTIALS_DIRECTORY that is an error ("... needs
///     $CREDENTIALS_DIRECTORY"). With `credentials` false (--check-config)
///     credential names are checked but left as they are.
///   - inputs.socket must fit in sun_path (at most 107 bytes).
///   - proxy.password_file (a path or "credential:NAME") is read, with
///     `credentials` true: its first line is the proxy password.
/// Returns false with *error ("<path>: <problem>") on the first problem.
bool resolve_paths(DaemonConfig* config, const ServiceEnvironment& env, bool credentials,
                   std::string* error);

/// What stops a configuration that parsed from being worth starting, as
/// one line for the log ("" when nothing): an endpoint still on a
/// documentation-only host (example.com, example.net, example.org, *.example,
/// *.invalid: the shipped placeholder), and a token file that gives no token
/// (missing, unreadable, empty, too long; read as the link would). All
/// problems in one line, separated by "; ". `config_path` names the file to
/// edit.
std::string missing_for_start(const DaemonConfig& config, const char* config_path);

/// One line for the startup log. Names where credentials come from but never
/// a token or the token command's text; URLs are shown without their query.
std::string describe(const DaemonConfig& config);

/// Fills the library's settings from `config`: reconnect (backoff,
/// heartbeat, endpoint pool, timeouts, endpoint count, tls_endpoints),
/// urls, ws.max_message_size, overflow, the tether.v1 resume protocol (always
/// on), device_id (nullptr when the machine id is to be used; session_id is
/// left to the caller) and acknowledgement settings; and the TLS settings.
/// Pointers into `config`'s strings are stored: it must outlive both, and
/// must not be modified meanwhile. Other fields of *client keep their values.
/// The link's settings for `config` (pointers into `config`, which must
/// outlive them). Token command wins over token file when both are set.
void to_link_settings(const DaemonConfig& config, port::PosixLinkSettings* settings);

/// A field the parser reads: its JSON path and type as written in
/// docs/CONFIG.md ("integer", "string", "string|null", "boolean", "number",
/// "enum", "array of strings").
struct ConfigField {
    std::string path;
    std::string type;
};

/// Every field the parser accepts, in the order it reads them. Collected by
/// running the parser itself, so the list cannot differ from what it accepts.
std::vector<ConfigField> config_fields();

}  // namespace tether::daemon

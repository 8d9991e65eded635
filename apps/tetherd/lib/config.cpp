// SPDX-License-Identifier: MIT
#include "config.h"

#include "tether/net/pin.h"

#include <cjson/cJSON.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cli.h"
#include "tether/ascii.h"
#include "tether/net/http_proxy.h"
#include "tether/net/url.h"
#include "tether/port/credentials.h"

namespace tether::daemon {
namespace {

// The daemon's own periods (health sampling, metrics): at most a day. The
// library's durations are bounded by the constants of the headers that own them.
constexpr std::uint32_t kMaxPeriodMs = 24u * 60u * 60u * 1000u;
constexpr std::size_t kMaxPathLength = 4095;
constexpr std::size_t kMaxNameLength = 255;
constexpr std::size_t kMaxInterfaces = 32;
constexpr std::size_t kMaxInterfaceName = 15;  // IFNAMSIZ - 1
constexpr std::size_t kMaxLedName = 64;
constexpr std::size_t kMaxSocketPath = 107;  // sizeof sockaddr_un::sun_path - 1

constexpr const char* kLogLevelNames[] = {"debug", "info", "warn", "error"};
constexpr const char* kDownlinkNames[] = {"stdout", "command"};

template <std::size_t N>
constexpr std::size_t count_of(const char* const (&)[N]) {
    return N;
}

// The names of a library enum whose values are 0..Count - 1, in order, as its
// own to_string() spells them: the library owns the names, not this file.
template <typename Enum, std::size_t Count>
const char* const* enum_names() {
    struct Names {
        const char* text[Count];
        Names() {
            for (std::size_t i = 0; i < Count; ++i) {
                text[i] = tether::to_string(static_cast<Enum>(i));
            }
        }
    };
    static const Names names;
    return names.text;
}

// The spool's offsets are 32-bit: the option has the library's type.
static_assert(std::is_same_v<decltype(SpoolOptions::max_bytes), decltype(SpoolConfig::max_bytes)>,
              "spool.max_bytes must have SpoolConfig's type");

// A value quoted for an error message: at most 64 bytes, control and
// non-ASCII bytes escaped, so a hostile file cannot garble the log line.
std::string quoted(const char* text) {
    std::string out = "\"";
    std::size_t i = 0;
    for (; text[i] != '\0' && i < 64; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte < 0x20 || byte >= 0x7f || byte == '"' || byte == '\\') {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            out += escaped;
        } else {
            out += static_cast<char>(byte);
        }
    }
    if (text[i] != '\0') {
        out += "...";
    }
    return out + "\"";
}

std::string one_of(const char* const* names, std::size_t count) {
    std::string out = "expected one of ";
    for (std::size_t i = 0; i < count; ++i) {
        out += i == 0 ? "" : ", ";
        out += names[i];
    }
    return out;
}

bool match_name(const char* text, const char* const* names, std::size_t count, std::size_t* index,
                std::string* problem) {
    for (std::size_t i = 0; i < count; ++i) {
        if (std::strcmp(text, names[i]) == 0) {
            *index = i;
            return true;
        }
    }
    *problem = one_of(names, count) + ", got " + quoted(text);
    return false;
}

// --- Checks shared by the file's fields and the command-line overrides ---
// Each returns false with a problem text that the caller prefixes with the
// field's path or the flag's name.

bool check_path(const char* text, std::string* problem) {
    const std::size_t length = std::strlen(text);
    if (length == 0) {
        *problem = "expected a non-empty path";
        return false;
    }
    if (length > kMaxPathLength) {
        *problem = "longer than 4095 bytes";
        return false;
    }
    return true;
}

bool check_command(const char* text, std::string* problem) {
    for (const char* c = text; *c != '\0'; ++c) {
        if (*c != ' ' && *c != '\t') {
            return check_path(text, problem);
        }
    }
    *problem = "expected a non-empty command";
    return false;
}

// An octal file mode as JSON has no octal numbers: "0660", "660", "0600".
bool parse_mode(const char* text, std::uint32_t* mode) {
    const std::size_t length = std::strlen(text);
    if (length < 3 || length > 4) {
        return false;
    }
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < length; ++i) {
        if (text[i] < '0' || text[i] > '7') {
            return false;
        }
        value = value * 8u + static_cast<std::uint32_t>(text[i] - '0');
    }
    if (value > 0777u) {
        return false;
    }
    *mode = value;
    return true;
}

// A user or device id: printable ASCII without spaces (it is hashed into the
// session id and shown in logs and on the server).
bool check_identifier(const char* text, std::string* problem) {
    const std::size_t length = std::strlen(text);
    if (length == 0 || length > kMaxNameLength) {
        *problem = "expected 1..255 characters";
        return false;
    }
    for (std::size_t i = 0; i < length; ++i) {
        if (text[i] < 0x21 || text[i] > 0x7e) {
            *problem = "expected printable ASCII without spaces, got " + quoted(text);
            return false;
        }
    }
    return true;
}

// proxy.url: "http://host[:port][/]", without credentials (they have their
// own fields, so that the URL can be logged).
bool check_proxy_url(const char* text, net::ProxyUrl* parsed, std::string* problem) {
    const net::ProxyUrlStatus status = net::parse_proxy_url(text, parsed);
    if (status == net::ProxyUrlStatus::kOk && parsed->has_credentials) {
        *parsed = net::ProxyUrl{};
        *problem =
            "credentials in the URL are not allowed (use proxy.username and "
            "proxy.password_file)";
        return false;
    }
    if (status != net::ProxyUrlStatus::kOk) {
        // Not quoted back: a mistyped URL may still hold a password.
        *problem = std::string("expected http://host:port (") + net::to_string(status) + ")";
        return false;
    }
    return true;
}

// A single directory entry name (an LED or a network interface): no '/',
// not "." or "..".
bool check_entry_name(const char* text, std::size_t max, std::string* problem) {
    const std::size_t length = std::strlen(text);
    bool ok =
        length >= 1 && length <= max && std::strcmp(text, ".") != 0 && std::strcmp(text, "..") != 0;
    for (std::size_t i = 0; ok && i < length; ++i) {
        ok = text[i] > 0x20 && text[i] < 0x7f && text[i] != '/';
    }
    if (!ok) {
        *problem = "expected a name of 1.." + std::to_string(max) +
                   " printable characters without '/', got " + quoted(text);
    }
    return ok;
}

const char* url_problem(net::UrlStatus status) {
    switch (status) {
        case net::UrlStatus::kBadScheme:
            return "the scheme must be ws:// or wss://";
        case net::UrlStatus::kBadHost:
            return "bad host";
        case net::UrlStatus::kBadPort:
            return "bad port (expected 1..65535)";
        case net::UrlStatus::kBadPath:
            return "bad path (too long, or not visible ASCII)";
        case net::UrlStatus::kHasUserinfo:
            return "credentials in a URL are not allowed (use credentials.token_file)";
        case net::UrlStatus::kHasFragment:
            return "a fragment (#) is not allowed";
        case net::UrlStatus::kOk:
            break;
    }
    return "bad URL";
}

bool check_url(const char* text, bool* tls, std::string* problem) {
    static net::WsUrl url;  // 1.3 KB: start-up only, single-threaded
    const net::UrlStatus status = net::parse_ws_url(text, &url);
    if (status != net::UrlStatus::kOk) {
        *problem = std::string("bad URL ") + quoted(text) + ": " + url_problem(status);
        return false;
    }
    if (tls != nullptr) {
        *tls = url.tls;
    }
    return true;
}

bool check_pin(const char* text, std::uint8_t out[32], std::string* problem) {
    if (!net::parse_sha256_pin(text, out)) {
        *problem = "expected 64 hex digits or 44 base64 characters (SHA-256), got " + quoted(text);
        return false;
    }
    return true;
}

const char* json_type_name(const cJSON* item) {
    if (cJSON_IsBool(item)) {
        return "a boolean";
    }
    if (cJSON_IsNull(item)) {
        return "null";
    }
    if (cJSON_IsNumber(item)) {
        return "a number";
    }
    if (cJSON_IsString(item)) {
        return "a string";
    }
    if (cJSON_IsArray(item)) {
        return "an array";
    }
    return "an object";
}

std::string number_text(double value) {
    char text[40];
    if (std::fabs(value) < 1e18 && value == std::floor(value)) {
        std::snprintf(text, sizeof text, "%.0f", value);
    } else {
        std::snprintf(text, sizeof text, "%g", value);
    }
    return text;
}

std::string range_text(std::uint64_t min, std::uint64_t max) {
    return std::to_string(min) + ".." + std::to_string(max);
}

// One JSON object of the file, read field by field. Every field the parser
// reads goes through take(), which marks it; finish() then reports whatever
// was not taken as unknown. A section that is absent from the file is read
// all the same (every take() finds nothing), so the record of fields taken
// is complete whatever the file holds: config_fields() relies on that.
struct Section {
    const cJSON* object;
    std::string prefix;  // "" for the top level, "inputs.health." for a nested one
    std::vector<const cJSON*> taken;
};

class Parser {
  public:
    Parser(DaemonConfig* config, std::vector<ConfigField>* record)
        : config_(config), record_(record) {}

    bool run(const cJSON* root);
    const std::string& error() const { return error_; }

  private:
    bool fail(const std::string& path, const std::string& problem) {
        if (error_.empty()) {
            error_ = path + ": " + problem;
        }
        return false;
    }
    bool failed() const { return !error_.empty(); }

    Section section(Section& parent, const char* name);
    bool finish(const Section& section);
    const cJSON* take(Section& section, const char* name, const char* type);

    void read_u32(Section& s, const char* name, std::uint32_t min, std::uint32_t max,
                  std::uint32_t* out);
    void read_u64(Section& s, const char* name, std::uint64_t min, std::uint64_t max,
                  std::uint64_t* out);
    void read_size(Section& s, const char* name, std::size_t min, std::size_t max,
                   std::size_t* out);
    void read_bool(Section& s, const char* name, bool* out);
    void read_number(Section& s, const char* name, double min, double max, double* out);
    // kind: the shared check applied to the text.
    enum class Text { kPath, kCommand, kIdentifier, kLed, kPin, kProxyUrl };
    void read_string(Section& s, const char* name, bool nullable, Text kind, std::string* out);
    bool read_enum(Section& s, const char* name, const char* const* names, std::size_t count,
                   std::size_t* index);
    void read_interfaces(Section& s);
    void read_endpoints(Section& root);

    void read_tls(Section& root);
    void read_credentials(Section& root);
    void read_session(Section& root);
    void read_heartbeat(Section& root);
    void read_backoff(Section& root);
    void read_timeouts(Section& root);
    void read_endpoint_pool(Section& root);
    void read_outbox(Section& root);
    void read_spool(Section& root);
    void read_inputs(Section& root);
    void read_downlink(Section& root);
    void read_state(Section& root);
    void read_status(Section& root);
    void read_metrics(Section& root);
    void read_watchdog(Section& root);
    void read_compression(Section& root);
    void read_log(Section& root);
    void read_protocol(Section& root, const cJSON* json);
    void read_proxy(Section& root);

    DaemonConfig* config_;
    std::vector<ConfigField>* record_;
    std::string error_;
    std::string pin_text_;
};

Section Parser::section(Section& parent, const char* name) {
    Section child{nullptr, parent.prefix + name + ".", {}};
    const cJSON* item = take(parent, name, nullptr);
    if (item != nullptr) {
        if (cJSON_IsObject(item)) {
            child.object = item;
        } else {
            fail(parent.prefix + name,
                 std::string("expected an object, got ") + json_type_name(item));
        }
    }
    return child;
}

const cJSON* Parser::take(Section& s, const char* name, const char* type) {
    if (record_ != nullptr && type != nullptr) {
        record_->push_back({s.prefix + name, type});
    }
    if (s.object == nullptr) {
        return nullptr;
    }
    const cJSON* item = cJSON_GetObjectItemCaseSensitive(s.object, name);
    if (item != nullptr) {
        s.taken.push_back(item);
    }
    return item;
}

bool Parser::finish(const Section& s) {
    if (s.object == nullptr || failed()) {
        return !failed();
    }
    for (const cJSON* item = s.object->child; item != nullptr; item = item->next) {
        for (const cJSON* before = s.object->child; before != item; before = before->next) {
            if (std::strcmp(before->string, item->string) == 0) {
                return fail(s.prefix + item->string, "duplicate field");
            }
        }
        bool known = false;
        for (const cJSON* taken : s.taken) {
            known = known || taken == item;
        }
        if (!known) {
            return fail(s.prefix + item->string, "unknown field");
        }
    }
    return true;
}

void Parser::read_u64(Section& s, const char* name, std::uint64_t min, std::uint64_t max,
                      std::uint64_t* out) {
    const cJSON* item = take(s, name, "integer");
    if (item == nullptr || failed()) {
        return;
    }
    const std::string path = s.prefix + name;
    if (!cJSON_IsNumber(item)) {
        fail(path, std::string("expected an integer, got ") + json_type_name(item));
        return;
    }
    const double value = item->valuedouble;
    if (value != std::floor(value)) {
        fail(path, "expected an integer, got " + number_text(value));
        return;
    }
    if (value < static_cast<double>(min) || value > static_cast<double>(max)) {
        fail(path, "expected " + range_text(min, max) + ", got " + number_text(value));
        return;
    }
    *out = static_cast<std::uint64_t>(value);
}

void Parser::read_u32(Section& s, const char* name, std::uint32_t min, std::uint32_t max,
                      std::uint32_t* out) {
    std::uint64_t value = *out;
    read_u64(s, name, min, max, &value);
    *out = static_cast<std::uint32_t>(value);
}

void Parser::read_size(Section& s, const char* name, std::size_t min, std::size_t max,
                       std::size_t* out) {
    std::uint64_t value = *out;
    read_u64(s, name, min, max, &value);
    *out = static_cast<std::size_t>(value);
}

void Parser::read_bool(Section& s, const char* name, bool* out) {
    const cJSON* item = take(s, name, "boolean");
    if (item == nullptr || failed()) {
        return;
    }
    if (!cJSON_IsBool(item)) {
        fail(s.prefix + name, std::string("expected true or false, got ") + json_type_name(item));
        return;
    }
    *out = cJSON_IsTrue(item) != 0;
}

void Parser::read_number(Section& s, const char* name, double min, double max, double* out) {
    const cJSON* item = take(s, name, "number");
    if (item == nullptr || failed()) {
        return;
    }
    const std::string path = s.prefix + name;
    if (!cJSON_IsNumber(item)) {
        fail(path, std::string("expected a number, got ") + json_type_name(item));
        return;
    }
    if (!(item->valuedouble >= min && item->valuedouble <= max)) {
        fail(path, "expected " + number_text(min) + ".." + number_text(max) + ", got " +
                       number_text(item->valuedouble));
        return;
    }
    *out = item->valuedouble;
}

void Parser::read_string(Section& s, const char* name, bool nullable, Text kind, std::string* out) {
    const cJSON* item = take(s, name, nullable ? "string|null" : "string");
    if (item == nullptr || failed()) {
        return;
    }
    const std::string path = s.prefix + name;
    if (nullable && cJSON_IsNull(item)) {
        out->clear();
        return;
    }
    if (!cJSON_IsString(item)) {
        fail(path,
             std::string(nullable ? "expected a string or null, got " : "expected a string, got ") +
                 json_type_name(item));
        return;
    }
    const char* text = item->valuestring;
    std::string problem;
    bool ok = false;
    switch (kind) {
        case Text::kPath:
            ok = check_path(text, &problem);
            break;
        case Text::kCommand:
            ok = check_command(text, &problem);
            break;
        case Text::kIdentifier:
            ok = check_identifier(text, &problem);
            break;
        case Text::kLed:
            ok = check_entry_name(text, kMaxLedName, &problem);
            break;
        case Text::kPin:
            ok = check_pin(text, config_->tls.pin_sha256, &problem);
            config_->tls.has_pin = ok;
            break;
        case Text::kProxyUrl:
            ok = check_proxy_url(text, &config_->proxy.parsed, &problem);
            break;
    }
    if (!ok) {
        fail(path, problem);
        return;
    }
    *out = text;
}

bool Parser::read_enum(Section& s, const char* name, const char* const* names, std::size_t count,
                       std::size_t* index) {
    const cJSON* item = take(s, name, "enum");
    if (item == nullptr || failed()) {
        return false;
    }
    const std::string path = s.prefix + name;
    if (!cJSON_IsString(item)) {
        fail(path, one_of(names, count) + ", got " + json_type_name(item));
        return false;
    }
    std::string problem;
    if (!match_name(item->valuestring, names, count, index, &problem)) {
        fail(path, problem);
        return false;
    }
    return true;
}

void Parser::read_endpoints(Section& root) {
    // Read first, so no earlier error can be pending.
    const cJSON* item = take(root, "endpoints", "array of strings");
    if (item == nullptr) {
        fail("endpoints", "required: a list of 1..8 ws:// or wss:// URLs");
        return;
    }
    if (!cJSON_IsArray(item)) {
        fail("endpoints", std::string("expected an array of URLs, got ") + json_type_name(item));
        return;
    }
    const int count = cJSON_GetArraySize(item);
    if (count < 1 || count > static_cast<int>(kMaxEndpoints)) {
        fail("endpoints", "expected 1..8 URLs, got " + std::to_string(count));
        return;
    }
    config_->endpoints.clear();
    int index = 0;
    for (const cJSON* url = item->child; url != nullptr; url = url->next, ++index) {
        const std::string path = "endpoints[" + std::to_string(index) + "]";
        std::string problem;
        if (!cJSON_IsString(url)) {
            fail(path, std::string("expected a string, got ") + json_type_name(url));
            return;
        }
        if (!check_url(url->valuestring, nullptr, &problem)) {
            fail(path, problem);
            return;
        }
        config_->endpoints.emplace_back(url->valuestring);
    }
}

void Parser::read_tls(Section& root) {
    Section s = section(root, "tls");
    TlsOptions& tls = config_->tls;
    read_string(s, "ca_file", true, Text::kPath, &tls.ca_file);
    read_string(s, "cert_file", true, Text::kPath, &tls.cert_file);
    read_string(s, "key_file", true, Text::kPath, &tls.key_file);
    read_string(s, "pin_sha256", true, Text::kPin, &pin_text_);
    read_bool(s, "insecure", &tls.insecure);
    if (!finish(s)) {
        return;
    }
    if (!tls.cert_file.empty() && tls.key_file.empty()) {
        fail("tls.cert_file", "requires tls.key_file (both or neither)");
    } else if (tls.cert_file.empty() && !tls.key_file.empty()) {
        fail("tls.key_file", "requires tls.cert_file (both or neither)");
    } else if (tls.insecure && tls.has_pin) {
        fail("tls.insecure", "cannot be combined with tls.pin_sha256 (insecure checks nothing)");
    }
}

void Parser::read_credentials(Section& root) {
    Section s = section(root, "credentials");
    CredentialsOptions& credentials = config_->credentials;
    read_string(s, "token_file", true, Text::kPath, &credentials.token_file);
    read_string(s, "token_command", true, Text::kCommand, &credentials.token_command);
    if (finish(s) && !credentials.token_file.empty() && !credentials.token_command.empty()) {
        fail("credentials.token_command", "not allowed together with credentials.token_file");
    }
}

void Parser::read_session(Section& root) {
    Section s = section(root, "session");
    SessionOptions& session = config_->session;
    read_string(s, "user", false, Text::kIdentifier, &session.user);
    read_string(s, "device_id", true, Text::kIdentifier, &session.device_id);
    read_u32(s, "ack_every", 1, 65536, &session.ack_every);
    read_u32(s, "ack_interval_ms", 1, 60000, &session.ack_interval_ms);
    read_u32(s, "seq_reservation", 1, 1u << 20, &session.seq_reservation);
    finish(s);
}

void Parser::read_heartbeat(Section& root) {
    Section s = section(root, "heartbeat");
    HeartbeatConfig& heartbeat = config_->heartbeat;
    read_u32(s, "interval_ms", 0, kMaxHeartbeatDetectionMs, &heartbeat.interval_ms);
    read_u32(s, "pong_timeout_ms", 1, kMaxHeartbeatDetectionMs, &heartbeat.pong_timeout_ms);
    read_u32(s, "max_missed_pongs", 1, 1000, &heartbeat.max_missed_pongs);
    if (!finish(s) || heartbeat.interval_ms == 0) {
        return;
    }
    const std::uint64_t detection =
        std::uint64_t{heartbeat.interval_ms} +
        std::uint64_t{heartbeat.max_missed_pongs} * heartbeat.pong_timeout_ms;
    if (detection > kMaxHeartbeatDetectionMs) {
        fail("heartbeat", "interval_ms + max_missed_pongs * pong_timeout_ms must be at most " +
                              std::to_string(kMaxHeartbeatDetectionMs) + " (one day), got " +
                              std::to_string(detection));
    }
}

void Parser::read_backoff(Section& root) {
    Section s = section(root, "backoff");
    BackoffConfig& backoff = config_->backoff;
    read_u32(s, "initial_ms", 1, kMaxBackoffDelayMs, &backoff.initial_delay_ms);
    read_u32(s, "max_ms", 1, kMaxBackoffDelayMs, &backoff.max_delay_ms);
    double multiplier = backoff.multiplier_permille / 1000.0;
    read_number(s, "multiplier", 1.0, 10.0, &multiplier);
    backoff.multiplier_permille = static_cast<std::uint32_t>(std::lround(multiplier * 1000.0));
    std::size_t jitter = 0;
    if (read_enum(s, "jitter", enum_names<JitterMode, kJitterModeCount>(), kJitterModeCount,
                  &jitter)) {
        backoff.jitter = static_cast<JitterMode>(jitter);
    }
    read_u32(s, "max_attempts", 0, 0xFFFFFFFFu, &backoff.max_attempts);
    read_u32(s, "healthy_after_ms", 0, kMaxIntervalMs, &backoff.healthy_after_ms);
    if (finish(s) && backoff.max_delay_ms < backoff.initial_delay_ms) {
        fail("backoff.max_ms", "must be at least backoff.initial_ms (" +
                                   std::to_string(backoff.initial_delay_ms) + "), got " +
                                   std::to_string(backoff.max_delay_ms));
    }
}

void Parser::read_timeouts(Section& root) {
    Section s = section(root, "timeouts");
    TimeoutOptions& timeouts = config_->timeouts;
    read_u32(s, "resolve_ms", 1, kMaxTimeoutMs, &timeouts.resolve_ms);
    read_u32(s, "connect_ms", 1, kMaxTimeoutMs, &timeouts.connect_ms);
    read_u32(s, "tls_ms", 1, kMaxTimeoutMs, &timeouts.tls_ms);
    read_u32(s, "handshake_ms", 1, kMaxTimeoutMs, &timeouts.handshake_ms);
    read_u32(s, "resume_ms", 1, kMaxTimeoutMs, &timeouts.resume_ms);
    read_u32(s, "close_ms", 1, kMaxTimeoutMs, &timeouts.close_ms);
    finish(s);
}

void Parser::read_endpoint_pool(Section& root) {
    Section s = section(root, "endpoint_pool");
    EndpointPoolConfig& pool = config_->endpoint_pool;
    read_u32(s, "failure_threshold", 1, 1000, &pool.failure_threshold);
    read_u32(s, "cooldown_ms", 1, kMaxEndpointPoolDurationMs, &pool.cooldown_ms);
    read_u32(s, "max_cooldown_ms", 1, kMaxEndpointPoolDurationMs, &pool.max_cooldown_ms);
    read_u32(s, "return_to_primary_after_ms", 0, kMaxEndpointPoolDurationMs,
             &pool.return_to_primary_after_ms);
    if (finish(s) && pool.max_cooldown_ms < pool.cooldown_ms) {
        fail("endpoint_pool.max_cooldown_ms", "must be at least endpoint_pool.cooldown_ms (" +
                                                  std::to_string(pool.cooldown_ms) + "), got " +
                                                  std::to_string(pool.max_cooldown_ms));
    }
}

void Parser::read_outbox(Section& root) {
    Section s = section(root, "outbox");
    OutboxOptions& outbox = config_->outbox;
    read_size(s, "size_bytes", 4096, 1u << 30, &outbox.size_bytes);
    std::size_t overflow = 0;
    if (read_enum(s, "overflow", enum_names<OverflowPolicy, kOverflowPolicyCount>(),
                  kOverflowPolicyCount, &overflow)) {
        outbox.overflow = static_cast<OverflowPolicy>(overflow);
    }
    read_size(s, "max_message_size", 16, 16u << 20, &outbox.max_message_size);
    // The outbox is heap memory, so aligned: ask it what its largest entry is.
    const std::size_t room = Outbox::max_message_size_for(outbox.size_bytes);
    if (finish(s) && outbox.max_message_size > room) {
        fail("outbox.max_message_size",
             "must fit in an empty outbox of outbox.size_bytes (at most " + std::to_string(room) +
                 "), got " + std::to_string(outbox.max_message_size));
    }
}

void Parser::read_spool(Section& root) {
    Section s = section(root, "spool");
    SpoolOptions& spool = config_->spool;
    read_bool(s, "enabled", &spool.enabled);
    read_u32(s, "max_bytes", 65536, std::numeric_limits<std::uint32_t>::max(), &spool.max_bytes);
    read_u32(s, "fsync_interval_ms", 0, 3600000, &spool.fsync_interval_ms);
    finish(s);
}

void Parser::read_interfaces(Section& s) {
    const cJSON* item = take(s, "interfaces", "array of strings");
    if (item == nullptr || failed()) {
        return;
    }
    const std::string path = s.prefix + "interfaces";
    if (!cJSON_IsArray(item)) {
        fail(path,
             std::string("expected an array of interface names, got ") + json_type_name(item));
        return;
    }
    if (cJSON_GetArraySize(item) > static_cast<int>(kMaxInterfaces)) {
        fail(path, "expected at most 32 names, got " + std::to_string(cJSON_GetArraySize(item)));
        return;
    }
    std::vector<std::string>& names = config_->inputs.health.interfaces;
    names.clear();
    int index = 0;
    for (const cJSON* name = item->child; name != nullptr; name = name->next, ++index) {
        const std::string element = path + "[" + std::to_string(index) + "]";
        std::string problem;
        if (!cJSON_IsString(name)) {
            fail(element, std::string("expected a string, got ") + json_type_name(name));
            return;
        }
        if (!check_entry_name(name->valuestring, kMaxInterfaceName, &problem)) {
            fail(element, problem);
            return;
        }
        names.emplace_back(name->valuestring);
    }
}

void Parser::read_inputs(Section& root) {
    Section s = section(root, "inputs");
    InputOptions& inputs = config_->inputs;
    read_bool(s, "stdin", &inputs.stdin_lines);
    read_string(s, "socket", true, Text::kPath, &inputs.socket);
    std::string mode;
    read_string(s, "socket_mode", false, Text::kPath, &mode);
    if (!mode.empty() && !failed() && !parse_mode(mode.c_str(), &inputs.socket_mode)) {
        fail("inputs.socket_mode",
             "expected an octal mode 0000..0777 (e.g. \"0660\"), got " + quoted(mode.c_str()));
    }
    Section health = section(s, "health");
    read_bool(health, "enabled", &inputs.health.enabled);
    read_u32(health, "period_ms", 1000, kMaxPeriodMs, &inputs.health.period_ms);
    read_string(health, "root", false, Text::kPath, &inputs.health.root);
    read_interfaces(health);
    finish(health);
    finish(s);
}

void Parser::read_downlink(Section& root) {
    constexpr std::uint32_t kHourMs = 60u * 60u * 1000u;
    constexpr std::uint32_t kMaxRetries = 100;
    // "/" + a seq as 20 digits + ".msg.tmp": the longest name in the directory.
    constexpr std::size_t kDeadLetterNameLength = 1 + 20 + 8;
    Section s = section(root, "downlink");
    DownlinkOptions& downlink = config_->downlink;
    std::size_t output = 0;
    if (read_enum(s, "output", kDownlinkNames, count_of(kDownlinkNames), &output)) {
        downlink.output = output == 0 ? DownlinkMode::kStdout : DownlinkMode::kCommand;
    }
    read_string(s, "command", true, Text::kCommand, &downlink.command);
    read_u32(s, "command_timeout_ms", 100, kHourMs, &downlink.command_timeout_ms);
    read_u32(s, "retries", 0, kMaxRetries, &downlink.retries);
    read_u32(s, "retry_delay_ms", 0, kHourMs, &downlink.retry_delay_ms);
    read_string(s, "dead_letter_dir", true, Text::kPath, &downlink.dead_letter_dir);
    if (!finish(s)) {
        return;
    }
    if (downlink.output == DownlinkMode::kCommand && downlink.command.empty()) {
        fail("downlink.command", "required when downlink.output is \"command\"");
    } else if (downlink.output == DownlinkMode::kStdout && !downlink.command.empty()) {
        fail("downlink.command", "only used when downlink.output is \"command\"");
    } else if (downlink.dead_letter_dir.size() > kMaxPathLength - kDeadLetterNameLength) {
        fail("downlink.dead_letter_dir", "longer than 4066 bytes (no room for its file names)");
    } else if (downlink.dead_letter_dir == config_->state_dir) {
        fail("downlink.dead_letter_dir", "must not be state_dir itself");
    }
}

void Parser::read_state(Section& root) {
    constexpr std::uint32_t kHourMs = 60u * 60u * 1000u;
    constexpr std::uint32_t kDayMs = 24u * kHourMs;
    Section s = section(root, "state");
    StateOptions& state = config_->state;
    read_bool(s, "enabled", &state.enabled);
    read_string(s, "desired_file", true, Text::kPath, &state.desired_file);
    read_string(s, "desired_command", true, Text::kCommand, &state.desired_command);
    read_u32(s, "command_timeout_ms", 100, kHourMs, &state.command_timeout_ms);
    read_u32(s, "retry_delay_ms", 0, kHourMs, &state.retry_delay_ms);
    read_string(s, "report_command", true, Text::kCommand, &state.report_command);
    read_u32(s, "report_interval_ms", 0, kDayMs, &state.report_interval_ms);
    if (!finish(s)) {
        return;
    }
    const bool file = !state.desired_file.empty();
    const bool command = !state.desired_command.empty();
    if (!state.enabled && (file || command || !state.report_command.empty())) {
        fail(file      ? "state.desired_file"
             : command ? "state.desired_command"
                       : "state.report_command",
             "only used when state.enabled is true");
    } else if (state.enabled && file == command) {
        fail("state.desired_file",
             file ? "give state.desired_file or state.desired_command, not both"
                  : "state.enabled needs state.desired_file or state.desired_command");
    } else if (file && state.desired_file.size() > kMaxPathLength - 4) {
        fail("state.desired_file", "longer than 4092 bytes (no room for its .tmp name)");
    }
}

void Parser::read_status(Section& root) {
    Section s = section(root, "status");
    StatusOptions& status = config_->status;
    std::string file;
    read_string(s, "file", true, Text::kPath, &file);
    read_string(s, "led", true, Text::kLed, &status.led);
    read_string(s, "led_root", false, Text::kPath, &status.led_root);
    finish(s);
    status.file_set = !file.empty();
    status.file = status.file_set ? file : config_->run_dir + "/status.json";
}

void Parser::read_metrics(Section& root) {
    Section s = section(root, "metrics");
    read_string(s, "file", true, Text::kPath, &config_->metrics.file);
    read_u32(s, "interval_ms", 1000, kMaxPeriodMs, &config_->metrics.interval_ms);
    finish(s);
}

void Parser::read_watchdog(Section& root) {
    Section s = section(root, "watchdog");
    read_string(s, "device", true, Text::kPath, &config_->watchdog.device);
    read_u32(s, "interval_ms", 100, 600000, &config_->watchdog.interval_ms);
    finish(s);
}

void Parser::read_compression(Section& root) {
    static const char* const kModes[] = {"off", "on"};
    Section s = section(root, "compression");
    CompressionOptions& c = config_->compression;
    std::size_t mode = 0;
    if (read_enum(s, "mode", kModes, 2, &mode)) {
        c.enabled = mode == 1;
    }
    read_u32(s, "threshold_bytes", 0, 16u * 1024u * 1024u, &c.threshold_bytes);
    read_bool(s, "client_no_context_takeover", &c.client_no_context_takeover);
    read_bool(s, "server_no_context_takeover", &c.server_no_context_takeover);
    read_u32(s, "client_max_window_bits", 9, 15, &c.client_max_window_bits);
    read_u32(s, "server_max_window_bits", 9, 15, &c.server_max_window_bits);
    finish(s);
}

void Parser::read_log(Section& root) {
    Section s = section(root, "log");
    std::size_t level = 0;
    if (read_enum(s, "level", kLogLevelNames, count_of(kLogLevelNames), &level)) {
        config_->log_level = static_cast<LogLevel>(level);
    }
    finish(s);
}

// What the link speaks, and the plain WebSocket settings. Read last, so that
// combinations only tether.v1 gives a meaning to can be refused by name.
void Parser::read_protocol(Section& root, const cJSON* json) {
    constexpr const char* kProtocolNames[] = {"tether.v1", "websocket"};
    constexpr const char* kDeliveryNames[] = {"at-most-once", "at-least-once"};
    constexpr const char* kMessageTypeNames[] = {"text", "binary"};
    std::size_t index = 0;
    if (read_enum(root, "protocol", kProtocolNames, count_of(kProtocolNames), &index)) {
        config_->protocol = index == 0 ? LinkProtocol::kTetherV1 : LinkProtocol::kWebSocket;
    }
    Section s = section(root, "plain");
    PlainOptions& plain = config_->plain;
    if (read_enum(s, "delivery", kDeliveryNames, count_of(kDeliveryNames), &index)) {
        plain.delivery = index == 0 ? Delivery::kAtMostOnce : Delivery::kAtLeastOnce;
    }
    read_string(s, "subprotocol", true, Text::kIdentifier, &plain.subprotocol);
    if (read_enum(s, "message_type", kMessageTypeNames, count_of(kMessageTypeNames), &index)) {
        plain.binary = index == 1;
    }
    if (!finish(s)) {
        return;
    }
    // RFC 6455 4.1: a subprotocol is an HTTP token.
    for (const char c : plain.subprotocol) {
        if (std::strchr("()<>@,;:\\\"/[]?={}", c) != nullptr) {
            fail("plain.subprotocol",
                 "expected an HTTP token (no separators such as \",\" or "
                 "\";\"), got " +
                     quoted(plain.subprotocol.c_str()));
            return;
        }
    }
    const bool websocket = config_->protocol == LinkProtocol::kWebSocket;
    if (!websocket && s.object != nullptr && s.object->child != nullptr) {
        fail(std::string("plain.") + s.object->child->string,
             "only used with \"protocol\": \"websocket\"");
        return;
    }
    if (!websocket) {
        return;
    }
    if (config_->state.enabled) {
        fail("state.enabled",
             "the device-state extension is part of tether.v1: not available "
             "with \"protocol\": \"websocket\"");
        return;
    }
    const cJSON* session = cJSON_GetObjectItemCaseSensitive(json, "session");
    if (cJSON_IsObject(session) && session->child != nullptr) {
        fail(std::string("session.") + session->child->string,
             "only used with \"protocol\": \"tether.v1\" (a plain WebSocket link has no "
             "session)");
        return;
    }
    const cJSON* resume = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(json, "timeouts"), "resume_ms");
    if (resume != nullptr) {
        fail("timeouts.resume_ms", "only used with \"protocol\": \"tether.v1\"");
    }
}

void Parser::read_proxy(Section& root) {
    Section s = section(root, "proxy");
    ProxyOptions& proxy = config_->proxy;
    read_string(s, "url", true, Text::kProxyUrl, &proxy.url);
    read_string(s, "username", true, Text::kIdentifier, &proxy.username);
    read_string(s, "password_file", true, Text::kPath, &proxy.password_file);
    const cJSON* list = take(s, "no_proxy", "array of strings");
    if (list != nullptr && !failed()) {
        if (!cJSON_IsArray(list)) {
            fail("proxy.no_proxy",
                 std::string("expected an array of host names, got ") + json_type_name(list));
        }
        int index = 0;
        for (const cJSON* entry = list->child; entry != nullptr && !failed();
             entry = entry->next, ++index) {
            const std::string element = "proxy.no_proxy[" + std::to_string(index) + "]";
            std::string problem;
            if (!cJSON_IsString(entry)) {
                fail(element, std::string("expected a string, got ") + json_type_name(entry));
            } else if (!check_identifier(entry->valuestring, &problem) ||
                       std::strchr(entry->valuestring, ',') != nullptr) {
                fail(element, problem.empty() ? "expected one entry, without ','" : problem);
            } else {
                proxy.no_proxy.emplace_back(entry->valuestring);
            }
        }
    }
    read_u32(s, "timeout_ms", 1, kMaxTimeoutMs, &proxy.timeout_ms);
    if (!finish(s)) {
        return;
    }
    if (proxy.url.empty() &&
        (!proxy.username.empty() || !proxy.password_file.empty() || !proxy.no_proxy.empty())) {
        fail("proxy.url", "required with the other proxy fields");
    } else if (!proxy.password_file.empty() && proxy.username.empty()) {
        fail("proxy.password_file", "requires proxy.username");
    } else if (proxy.username.size() > net::kMaxProxyUsername ||
               proxy.username.find(':') != std::string::npos) {
        fail("proxy.username", "expected at most 128 characters without ':'");
    }
    if (failed()) {
        return;
    }
    proxy.no_proxy_list.clear();
    for (const std::string& entry : proxy.no_proxy) {
        proxy.no_proxy_list += (proxy.no_proxy_list.empty() ? "" : ",") + entry;
    }
    if (!proxy.username.empty()) {
        proxy.parsed.has_credentials = true;
        std::memcpy(proxy.parsed.username, proxy.username.c_str(), proxy.username.size() + 1);
    }
}

bool Parser::run(const cJSON* root) {
    if (!cJSON_IsObject(root)) {
        return fail("config", std::string("expected a JSON object, got ") + json_type_name(root));
    }
    Section top{root, "", {}};
    read_endpoints(top);
    read_tls(top);
    read_credentials(top);
    read_session(top);
    read_heartbeat(top);
    read_backoff(top);
    read_timeouts(top);
    read_endpoint_pool(top);
    read_outbox(top);
    read_spool(top);
    // null (or absent): the service manager's $STATE_DIRECTORY /
    // $RUNTIME_DIRECTORY, else the built-in default (resolve_paths()).
    std::string dir;
    read_string(top, "state_dir", true, Text::kPath, &dir);
    if (!dir.empty()) {
        config_->state_dir = dir;
        config_->state_dir_set = true;
    }
    dir.clear();
    read_string(top, "run_dir", true, Text::kPath, &dir);
    if (!dir.empty()) {
        config_->run_dir = dir;
        config_->run_dir_set = true;
    }
    read_inputs(top);
    read_downlink(top);
    read_state(top);
    read_status(top);
    read_metrics(top);
    read_watchdog(top);
    read_compression(top);
    read_log(top);
    read_protocol(top, root);
    read_proxy(top);
    return finish(top);
}

// "line L, column C (byte B)" of `offset` into `text`, counting from 1.
std::string position_text(const char* text, std::size_t offset) {
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column) + " (byte " +
           std::to_string(offset + 1) + ")";
}

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool set_error(std::string* error, const std::string& text) {
    if (error != nullptr) {
        *error = text;
    }
    return false;
}

bool parse_bool_flag(const char* value, bool* out) {
    if (value == nullptr || std::strcmp(value, "true") == 0) {
        *out = true;
        return true;
    }
    if (std::strcmp(value, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

constexpr OverrideSpec kOverrides[] = {
    {"endpoint", "URL", "endpoints",
     "server URL (ws:// or wss://); replaces the file's list; repeat for fallbacks"},
    {"state-dir", "DIR", "state_dir", "persistent state (session counters, spool)"},
    {"run-dir", "DIR", "run_dir", "runtime files (status.json, sockets)"},
    {"log-level", "LEVEL", "log.level", "debug, info, warn or error"},
    {"user", "USER", "session.user", "user id in the session id"},
    {"device-id", "ID", "session.device_id", "device id (default: /etc/machine-id)"},
    {"token-file", "FILE", "credentials.token_file", "bearer token file (replaces a command)"},
    {"token-command", "CMD", "credentials.token_command",
     "command printing the token (replaces a file)"},
    {"ca-file", "FILE", "tls.ca_file", "PEM CA bundle (default: the system's)"},
    {"pin-sha256", "PIN", "tls.pin_sha256", "SHA-256 of the server's public key (hex or base64)"},
    {"insecure", nullptr, "tls.insecure", "do not verify the server at all (testing only)"},
};

std::string url_for_log(const std::string& url) {
    const std::size_t query = url.find('?');
    return query == std::string::npos ? url : url.substr(0, query) + "?...";
}

}  // namespace

const char* to_string(LogLevel level) {
    const auto index = static_cast<std::size_t>(level);
    return index < count_of(kLogLevelNames) ? kLogLevelNames[index] : "unknown";
}

bool parse_log_level(const char* text, LogLevel* level) {
    for (std::size_t i = 0; i < count_of(kLogLevelNames); ++i) {
        if (std::strcmp(text, kLogLevelNames[i]) == 0) {
            *level = static_cast<LogLevel>(i);
            return true;
        }
    }
    return false;
}

const char* to_string(DownlinkMode output) {
    const auto index = static_cast<std::size_t>(output);
    return index < count_of(kDownlinkNames) ? kDownlinkNames[index] : "unknown";
}

std::string dead_letter_dir(const DaemonConfig& config) {
    if (!config.downlink.dead_letter_dir.empty()) {
        return config.downlink.dead_letter_dir;
    }
    return config.state_dir + "/dead-letter";
}

namespace {

const char* file_kind(mode_t mode) {
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    return "not a plain file";
}

// Reads a whole regular file of at most kMaxConfigFileSize bytes. Opened
// non-blocking, so a FIFO with no writer cannot stall start-up, and checked
// with fstat before a byte is read, so a FIFO, a device (/dev/zero) or a
// directory is refused by name. The read stops one byte past the limit,
// which also catches a file that grows after fstat.
bool read_config_text(const char* path, std::string* text, std::string* problem) {
    const int fd = ::open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *problem = std::string("cannot read: ") + std::strerror(errno);
        return false;
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        *problem = std::string("cannot read: ") + std::strerror(errno);
        ::close(fd);
        return false;
    }
    if (!S_ISREG(info.st_mode) || info.st_size > static_cast<off_t>(kMaxConfigFileSize)) {
        *problem = S_ISREG(info.st_mode)
                       ? std::string("larger than 1 MiB")
                       : std::string("not a regular file (") + file_kind(info.st_mode) + ")";
        ::close(fd);
        return false;
    }
    char chunk[4096];
    while (text->size() <= kMaxConfigFileSize) {
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            *problem = std::string("cannot read: ") + std::strerror(errno);
            ::close(fd);
            return false;
        }
        if (got == 0) {
            break;
        }
        text->append(chunk, static_cast<std::size_t>(got));
    }
    ::close(fd);
    if (text->size() > kMaxConfigFileSize) {
        *problem = "larger than 1 MiB";
        return false;
    }
    return true;
}

bool parse_with(const char* json, std::size_t size, DaemonConfig* out, std::string* error,
                std::vector<ConfigField>* record) {
    std::size_t start = 0;
    while (start < size && is_json_space(json[start])) {
        ++start;
    }
    if (start == size) {
        return set_error(error, "config is empty");
    }
    const char* end = nullptr;
    cJSON* root = cJSON_ParseWithLengthOpts(json, size, &end, 0);
    if (root == nullptr) {
        const std::size_t offset =
            end != nullptr && end >= json ? static_cast<std::size_t>(end - json) : 0;
        return set_error(error, "not JSON: syntax error at " +
                                    position_text(json, offset < size ? offset : size));
    }
    std::size_t rest = static_cast<std::size_t>(end - json);
    while (rest < size && is_json_space(json[rest])) {
        ++rest;
    }
    if (rest < size) {
        cJSON_Delete(root);
        return set_error(error, "not JSON: trailing characters at " + position_text(json, rest));
    }
    *out = DaemonConfig{};
    Parser parser(out, record);
    const bool ok = parser.run(root);
    cJSON_Delete(root);
    return ok || set_error(error, parser.error());
}

}  // namespace

bool parse_config(const char* json, std::size_t size, DaemonConfig* out, std::string* error) {
    return parse_with(json, size, out, error, nullptr);
}

bool load_config_file(const char* path, DaemonConfig* out, std::string* error) {
    const std::string prefix = std::string(path) + ": ";
    std::string problem;
    std::string text;
    if (!read_config_text(path, &text, &problem)) {
        return set_error(error, prefix + problem);
    }
    if (!parse_config(text.data(), text.size(), out, &problem)) {
        return set_error(error, prefix + problem);
    }
    return true;
}

const OverrideSpec* override_specs(std::size_t* count) {
    *count = sizeof kOverrides / sizeof kOverrides[0];
    return kOverrides;
}

const OverrideSpec* find_override(const char* name) {
    for (const OverrideSpec& spec : kOverrides) {
        if (std::strcmp(spec.name, name) == 0) {
            return &spec;
        }
    }
    return nullptr;
}

bool apply_override(DaemonConfig* config, const char* name, const char* value, std::string* error) {
    const OverrideSpec* spec = find_override(name);
    if (spec == nullptr) {
        char message[128];
        cli::unknown_option_message((std::string("--") + name).c_str(), message, sizeof message);
        return set_error(error, message);
    }
    const std::string flag = std::string("--") + name;
    if (spec->metavar != nullptr && value == nullptr) {
        char message[128];
        cli::needs_value_message(name, message, sizeof message);
        return set_error(error, message);
    }
    std::string problem;
    const std::string key = name;
    if (key == "insecure") {
        bool insecure = false;
        if (!parse_bool_flag(value, &insecure)) {
            return set_error(error,
                             flag + ": expected no value, true or false, got " + quoted(value));
        }
        if (insecure && config->tls.has_pin) {
            return set_error(error, flag + ": cannot be combined with tls.pin_sha256");
        }
        config->tls.insecure = insecure;
    } else if (key == "endpoint") {
        if (!check_url(value, nullptr, &problem)) {
            return set_error(error, flag + ": " + problem);
        }
        if (config->endpoints_overridden && config->endpoints.size() >= kMaxEndpoints) {
            return set_error(error, flag + ": at most 8 endpoints");
        }
        if (!config->endpoints_overridden) {
            config->endpoints.clear();
            config->endpoints_overridden = true;
        }
        config->endpoints.emplace_back(value);
    } else if (key == "log-level") {
        std::size_t level = 0;
        if (!match_name(value, kLogLevelNames, count_of(kLogLevelNames), &level, &problem)) {
            return set_error(error, flag + ": " + problem);
        }
        config->log_level = static_cast<LogLevel>(level);
    } else if (key == "user" || key == "device-id") {
        if (!check_identifier(value, &problem)) {
            return set_error(error, flag + ": " + problem);
        }
        (key == "user" ? config->session.user : config->session.device_id) = value;
    } else if (key == "pin-sha256") {
        std::uint8_t pin[32];
        if (!check_pin(value, pin, &problem)) {
            return set_error(error, flag + ": " + problem);
        }
        if (config->tls.insecure) {
            return set_error(error, flag + ": cannot be combined with tls.insecure");
        }
        std::memcpy(config->tls.pin_sha256, pin, sizeof pin);
        config->tls.has_pin = true;
    } else if (key == "token-command") {
        if (!check_command(value, &problem)) {
            return set_error(error, flag + ": " + problem);
        }
        config->credentials.token_command = value;
        config->credentials.token_file.clear();
    } else {
        // The remaining overrides are all paths.
        if (!check_path(value, &problem)) {
            return set_error(error, flag + ": " + problem);
        }
        if (key == "state-dir") {
            config->state_dir = value;
            config->state_dir_set = true;
        } else if (key == "run-dir") {
            config->run_dir = value;
            config->run_dir_set = true;
            if (!config->status.file_set) {
                config->status.file = config->run_dir + "/status.json";
            }
        } else if (key == "token-file") {
            config->credentials.token_file = value;
            config->credentials.token_command.clear();
        } else {
            config->tls.ca_file = value;
        }
    }
    return true;
}

void print_override_help(std::FILE* out) {
    for (const OverrideSpec& spec : kOverrides) {
        std::string flag = std::string("  --") + spec.name;
        if (spec.metavar != nullptr) {
            flag += std::string(" ") + spec.metavar;
        }
        std::fprintf(out, "%-24s %s (%s)\n", flag.c_str(), spec.help, spec.field);
    }
}

const char* to_string(LinkProtocol protocol) {
    return protocol == LinkProtocol::kWebSocket ? "websocket" : "tether.v1";
}

std::string describe(const DaemonConfig& config) {
    std::string out = "endpoints=";
    for (std::size_t i = 0; i < config.endpoints.size(); ++i) {
        out += (i == 0 ? "" : ",") + url_for_log(config.endpoints[i]);
    }
    const TlsOptions& tls = config.tls;
    if (tls.insecure) {
        out += " tls=INSECURE";
    } else {
        out += " tls=ca:" + (tls.ca_file.empty() ? std::string("system") : tls.ca_file);
        out += tls.cert_file.empty() ? "" : ",client-cert:" + tls.cert_file;
        out += tls.has_pin ? ",pinned" : "";
    }
    const CredentialsOptions& credentials = config.credentials;
    out += " credentials=";
    out += !credentials.token_file.empty()      ? "token_file:" + credentials.token_file
           : !credentials.token_command.empty() ? std::string("token_command")
                                                : std::string("none");
    out += " user=" + config.session.user;
    out += " device=" + (config.session.device_id.empty() ? std::string("machine-id")
                                                          : config.session.device_id);
    const HeartbeatConfig& heartbeat = config.heartbeat;
    char numbers[160];
    if (heartbeat.interval_ms == 0) {
        out += " heartbeat=off";
    } else {
        std::snprintf(numbers, sizeof numbers, " heartbeat=%u/%ums/%u",
                      static_cast<unsigned>(heartbeat.interval_ms),
                      static_cast<unsigned>(heartbeat.pong_timeout_ms),
                      static_cast<unsigned>(heartbeat.max_missed_pongs));
        out += numbers;
    }
    const BackoffConfig& backoff = config.backoff;
    std::snprintf(numbers, sizeof numbers, " backoff=%u..%ums,x%u.%03u,%s,attempts:%u",
                  static_cast<unsigned>(backoff.initial_delay_ms),
                  static_cast<unsigned>(backoff.max_delay_ms),
                  static_cast<unsigned>(backoff.multiplier_permille / 1000u),
                  static_cast<unsigned>(backoff.multiplier_permille % 1000u),
                  to_string(backoff.jitter), static_cast<unsigned>(backoff.max_attempts));
    out += numbers;
    std::snprintf(numbers, sizeof numbers, " outbox=%zu,%s,max_message:%zu",
                  config.outbox.size_bytes, tether::to_string(config.outbox.overflow),
                  config.outbox.max_message_size);
    out += numbers;
    if (config.spool.enabled) {
        out += " spool=" + std::to_string(config.spool.max_bytes);
    } else {
        out += " spool=off";
    }
    out += " state_dir=" + config.state_dir + " run_dir=" + config.run_dir;
    std::string inputs;
    inputs += config.inputs.stdin_lines ? ",stdin" : "";
    inputs += config.inputs.socket.empty() ? "" : ",socket:" + config.inputs.socket;
    inputs += config.inputs.health.enabled ? ",health" : "";
    out += " inputs=" + (inputs.empty() ? std::string("none") : inputs.substr(1));
    out += std::string(" downlink=") + to_string(config.downlink.output);
    if (config.state.enabled) {
        out +=
            " state=" + (config.state.desired_file.empty() ? std::string("command")
                                                           : "file:" + config.state.desired_file);
        out += config.state.report_command.empty() ? "" : ",report_command";
    } else {
        out += " state=off";
    }
    out += " status=" + config.status.file;
    out += config.status.led.empty() ? "" : " led=" + config.status.led;
    out += " metrics=" + (config.metrics.file.empty() ? std::string("off") : config.metrics.file);
    out += " watchdog=" +
           (config.watchdog.device.empty() ? std::string("off") : config.watchdog.device);
    out += config.compression.enabled
               ? " compression=on(threshold=" + std::to_string(config.compression.threshold_bytes) +
                     ")"
               : std::string(" compression=off");
    out += std::string(" log=") + to_string(config.log_level);
    if (config.protocol == LinkProtocol::kWebSocket) {
        out += " protocol=websocket";
        out += std::string(" delivery=") + tether::to_string(config.plain.delivery);
        out += config.plain.binary ? " message_type=binary" : " message_type=text";
        out += config.plain.subprotocol.empty() ? "" : " subprotocol=" + config.plain.subprotocol;
    }
    if (!config.proxy.url.empty()) {
        // Where the password comes from, never the password.
        const net::ProxyUrl& proxy = config.proxy.parsed;
        out += std::string(" proxy=") + (proxy.host_is_ipv6 ? "[" : "") + proxy.host +
               (proxy.host_is_ipv6 ? "]:" : ":") + std::to_string(proxy.port);
        if (!config.proxy.username.empty()) {
            out += ",user:" + config.proxy.username;
            out += config.proxy.password_file.empty()
                       ? ",no-password"
                       : ",password_file:" + config.proxy.password_file;
        }
        if (!config.proxy.no_proxy_list.empty()) {
            out += ",no_proxy:" + config.proxy.no_proxy_list;
        }
    }
    return out;
}

void to_link_settings(const DaemonConfig& config, port::PosixLinkSettings* settings) {
    *settings = port::PosixLinkSettings{};
    DurableLinkConfig& link = settings->link;
    ClientConfig* client = &link.client;
    ReconnectConfig& reconnect = client->reconnect;
    reconnect.backoff = config.backoff;
    reconnect.heartbeat = config.heartbeat;
    // A round-trip probe every interval while data flows (tether_rtt_seconds).
    reconnect.heartbeat.rtt_probe_ms = config.heartbeat.interval_ms;
    reconnect.pool = config.endpoint_pool;
    reconnect.resume_protocol = config.protocol == LinkProtocol::kTetherV1;
    reconnect.resolve_timeout_ms = config.timeouts.resolve_ms;
    reconnect.connect_timeout_ms = config.timeouts.connect_ms;
    reconnect.tls_timeout_ms = config.timeouts.tls_ms;
    reconnect.handshake_timeout_ms = config.timeouts.handshake_ms;
    reconnect.resume_timeout_ms = config.timeouts.resume_ms;
    reconnect.close_timeout_ms = config.timeouts.close_ms;
    // Client::init() counts the endpoints and marks the wss:// ones.
    const std::size_t count =
        config.endpoints.size() < kMaxEndpoints ? config.endpoints.size() : kMaxEndpoints;
    for (std::size_t i = 0; i < kMaxEndpoints; ++i) {
        client->urls[i] = i < count ? config.endpoints[i].c_str() : nullptr;
    }
    client->url_count = count;
    client->ws.max_message_size = config.outbox.max_message_size;
    // The deflater itself is the caller's (tetherd's main): without one, no offer.
    client->deflate_offer.client_no_context_takeover =
        config.compression.client_no_context_takeover;
    client->deflate_offer.server_no_context_takeover =
        config.compression.server_no_context_takeover;
    client->deflate_offer.client_max_window_bits =
        static_cast<std::uint8_t>(config.compression.client_max_window_bits);
    client->deflate_offer.server_max_window_bits =
        static_cast<std::uint8_t>(config.compression.server_max_window_bits);
    client->deflate_threshold = config.compression.threshold_bytes;
    client->overflow = config.outbox.overflow;
    client->ack_every = config.session.ack_every;
    client->ack_interval_ms = config.session.ack_interval_ms;
    client->seq_reservation = config.session.seq_reservation;
    // Downlink is acknowledged once the output has handed it over.
    client->confirm_downlink = true;
    if (config.protocol == LinkProtocol::kWebSocket) {
        client->delivery = config.plain.delivery;
        client->message_type = config.plain.binary ? net::WsOpcode::kBinary : net::WsOpcode::kText;
        if (!config.plain.subprotocol.empty()) {
            config.plain.offered[0] = config.plain.subprotocol.c_str();
            client->subprotocols = config.plain.offered;
            client->subprotocol_count = 1;
        }
    }
    link.outbox_bytes = config.outbox.size_bytes;
    link.spool = config.spool.enabled;
    link.spool_config.max_bytes = config.spool.max_bytes;
    link.spool_config.fsync_interval_ms = config.spool.fsync_interval_ms;
    link.device_state.enabled = config.state.enabled;

    port::TlsSettings* tls = &settings->tls;
    tls->ca_file = config.tls.ca_file.empty() ? nullptr : config.tls.ca_file.c_str();
    tls->client_cert_file = config.tls.cert_file.empty() ? nullptr : config.tls.cert_file.c_str();
    tls->client_key_file = config.tls.key_file.empty() ? nullptr : config.tls.key_file.c_str();
    tls->has_pin = config.tls.has_pin;
    std::memcpy(tls->pin_sha256, config.tls.pin_sha256, sizeof tls->pin_sha256);
    tls->insecure = config.tls.insecure;
    tls->session_resumption = true;

    settings->state_dir = config.state_dir.c_str();
    settings->user = config.session.user.c_str();
    settings->device_id =
        config.session.device_id.empty() ? nullptr : config.session.device_id.c_str();
    settings->token_file =
        config.credentials.token_file.empty() || !config.credentials.token_command.empty()
            ? nullptr
            : config.credentials.token_file.c_str();
    settings->token_command = config.credentials.token_command.empty()
                                  ? nullptr
                                  : config.credentials.token_command.c_str();
    settings->entropy_label = "tetherd";

    if (!config.proxy.url.empty()) {
        client->proxy = &config.proxy.parsed;
        client->no_proxy =
            config.proxy.no_proxy_list.empty() ? nullptr : config.proxy.no_proxy_list.c_str();
        reconnect.proxy_timeout_ms = config.proxy.timeout_ms;
    }
}

namespace {

// The first path of a ':' separated list, as systemd gives several
// StateDirectory= entries.
std::string first_of_list(const std::string& list) {
    return list.substr(0, list.find(':'));
}

// A relative path is taken inside `dir`.
void inside(const std::string& dir, std::string* path) {
    if (!path->empty() && (*path)[0] != '/') {
        *path = dir + "/" + *path;
    }
}

// "credential:NAME" -> credentials_directory/NAME.
bool resolve_credential(const char* field, std::string* value, const ServiceEnvironment& env,
                        bool credentials, std::string* error) {
    const std::size_t prefix = std::strlen(kCredentialPrefix);
    if (value->compare(0, prefix, kCredentialPrefix) != 0) {
        return true;
    }
    const std::string name = value->substr(prefix);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        return set_error(error, std::string(field) +
                                    ": expected credential:NAME with NAME a "
                                    "file name (no '/'), got " +
                                    quoted(value->c_str()));
    }
    if (!credentials) {
        return true;
    }
    if (env.credentials_directory.empty()) {
        return set_error(error, std::string(field) + ": " + quoted(value->c_str()) +
                                    " needs $CREDENTIALS_DIRECTORY (systemd's LoadCredential=" +
                                    name + ":FILE in the unit); outside systemd give a path");
    }
    *value = env.credentials_directory + "/" + name;
    return true;
}

// Hosts RFC 2606 and RFC 6761 reserve for documentation: never a real server.
bool placeholder_host(const char* host) {
    std::string h;
    for (const char* c = host; *c != '\0'; ++c) {
        h += static_cast<char>(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
    auto ends_with = [&h](const char* suffix) {
        const std::size_t n = std::strlen(suffix);
        return h.size() >= n && h.compare(h.size() - n, n, suffix) == 0;
    };
    for (const char* domain : {"example.com", "example.net", "example.org"}) {
        if (h == domain || ends_with((std::string(".") + domain).c_str())) {
            return true;
        }
    }
    return h == "example" || h == "invalid" || ends_with(".example") || ends_with(".invalid");
}

// The first line of proxy.password_file into the parsed proxy URL. The
// error names the file, never what it holds.
bool read_proxy_password(ProxyOptions* proxy, std::string* error) {
    if (proxy->password_file.empty()) {
        return true;
    }
    std::string text;
    std::string problem;
    if (!read_config_text(proxy->password_file.c_str(), &text, &problem)) {
        return set_error(error, "proxy.password_file: " + proxy->password_file + ": " + problem);
    }
    const std::size_t end = text.find_first_of("\r\n");
    if (end != std::string::npos) {
        text.resize(end);
    }
    bool ok = !text.empty() && text.size() <= net::kMaxProxyPassword;
    for (char c : text) {
        ok = ok && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
    }
    if (!ok) {
        std::fill(text.begin(), text.end(), '\0');
        return set_error(error, "proxy.password_file: " + proxy->password_file +
                                    ": expected one line of 1..256 printable characters");
    }
    std::memcpy(proxy->parsed.password, text.c_str(), text.size() + 1);
    std::fill(text.begin(), text.end(), '\0');
    return true;
}

}  // namespace

bool resolve_paths(DaemonConfig* config, const ServiceEnvironment& env, bool credentials,
                   std::string* error) {
    if (!config->state_dir_set && !env.state_directory.empty()) {
        config->state_dir = first_of_list(env.state_directory);
    }
    if (!config->run_dir_set && !env.runtime_directory.empty()) {
        config->run_dir = first_of_list(env.runtime_directory);
    }
    if (!config->status.file_set) {
        config->status.file = config->run_dir + "/status.json";
    }
    inside(config->run_dir, &config->status.file);
    inside(config->run_dir, &config->metrics.file);
    inside(config->run_dir, &config->inputs.socket);
    if (config->inputs.socket.size() > kMaxSocketPath) {
        return set_error(error, "inputs.socket: " + quoted(config->inputs.socket.c_str()) + " is " +
                                    std::to_string(config->inputs.socket.size()) +
                                    " bytes; a UNIX socket path holds at most 107");
    }
    const std::size_t prefix = std::strlen(kCredentialPrefix);
    if (config->credentials.token_file.compare(0, prefix, kCredentialPrefix) == 0) {
        config->credentials.token_credential = config->credentials.token_file.substr(prefix);
    }
    return resolve_credential("credentials.token_file", &config->credentials.token_file, env,
                              credentials, error) &&
           resolve_credential("tls.ca_file", &config->tls.ca_file, env, credentials, error) &&
           resolve_credential("tls.cert_file", &config->tls.cert_file, env, credentials, error) &&
           resolve_credential("tls.key_file", &config->tls.key_file, env, credentials, error) &&
           resolve_credential("proxy.password_file", &config->proxy.password_file, env, credentials,
                              error) &&
           (!credentials || read_proxy_password(&config->proxy, error));
}

std::string missing_for_start(const DaemonConfig& config, const char* config_path) {
    std::string out;
    auto add = [&out](const std::string& problem) { out += (out.empty() ? "" : "; ") + problem; };
    static net::WsUrl url;  // start-up only, single-threaded
    for (std::size_t i = 0; i < config.endpoints.size(); ++i) {
        if (net::parse_ws_url(config.endpoints[i].c_str(), &url) == net::UrlStatus::kOk &&
            placeholder_host(url.host)) {
            add("endpoints[" + std::to_string(i) + "]: " + quoted(config.endpoints[i].c_str()) +
                " is the example placeholder: put the server's URL in " + config_path);
        }
    }
    if (!config.credentials.token_file.empty() && config.credentials.token_command.empty()) {
        port::TokenFileCredentials token(config.credentials.token_file.c_str());
        static char header[port::TokenFileCredentials::kMaxToken + 64];
        if (!token.authorization(header, sizeof header)) {
            const std::string& path = config.credentials.token_file;
            const bool credential = !config.credentials.token_credential.empty();
            add("credentials.token_file: " + path + " " + token.problem() +
                (credential ? ": put the device's token in the file the unit loads as credential " +
                                  quoted(config.credentials.token_credential.c_str()) +
                                  " (LoadCredential=" + config.credentials.token_credential +
                                  ":/etc/tether/token in tetherd.service), then start it again"
                            : ": put the device's token there (one line)"));
        }
        std::memset(header, 0, sizeof header);
    }
    return out;
}

std::vector<ConfigField> config_fields() {
    std::vector<ConfigField> fields;
    static const char kMinimal[] = "{\"endpoints\": [\"ws://localhost/\"]}";
    DaemonConfig scratch;
    parse_with(kMinimal, sizeof kMinimal - 1, &scratch, nullptr, &fields);
    return fields;
}

}  // namespace tether::daemon

// SPDX-License-Identifier: MIT
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"
#include "support/doc_section.h"
#include "support/temp_dir.h"
#include "tether/reconnect.h"

// After the standard headers: CppUTest's operator-new macro breaks them.
#include <CppUTest/TestHarness.h>

using tether::daemon::DaemonConfig;

namespace {

const char* const kMinimal = R"({"endpoints": ["ws://localhost/"]})";

DaemonConfig parse_ok(const std::string& json) {
    DaemonConfig config;
    std::string error;
    const bool ok = tether::daemon::parse_config(json.data(), json.size(), &config, &error);
    if (!ok) {
        FAIL(("unexpected error: " + error).c_str());
    }
    return config;
}

std::string parse_error(const std::string& json) {
    DaemonConfig config;
    std::string error;
    CHECK_FALSE(tether::daemon::parse_config(json.data(), json.size(), &config, &error));
    return error;
}

// A config with the endpoint and one more top-level member, e.g.
// with_member(R"("tls": {"insecure": 1})").
std::string with_member(const std::string& member) {
    return R"({"endpoints": ["ws://localhost/"], )" + member + "}";
}

// {"a": {"b": {"c": value}}} for the path "a.b.c", with the endpoint.
std::string with_path(const std::string& path, const std::string& value) {
    std::string open;
    std::string close;
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = path.find('.', start);
        const std::string name = path.substr(start, dot == std::string::npos ? dot : dot - start);
        open += "\"" + name + "\": ";
        if (dot == std::string::npos) {
            break;
        }
        open += "{";
        close += "}";
        start = dot + 1;
    }
    if (path == "endpoints") {
        return "{" + open + value + "}";
    }
    return with_member(open + value + close);
}

std::string read_text(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

std::string example_path() {
    return std::string(TETHER_SOURCE_DIR) + "/packaging/tetherd.example.json";
}

// The cells of a markdown table row, trimmed, without backticks; `\|` stays a '|'.
std::vector<std::string> cells(const std::string& row) {
    std::vector<std::string> out;
    std::string cell;
    for (std::size_t i = 1; i < row.size(); ++i) {
        if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (row[i] == '|') {
            const std::size_t first = cell.find_first_not_of(" `");
            const std::size_t last = cell.find_last_not_of(" `");
            out.push_back(first == std::string::npos ? "" : cell.substr(first, last - first + 1));
            cell.clear();
        } else {
            cell += row[i];
        }
    }
    return out;
}

}  // namespace

TEST_GROUP(TetherdConfig){};

TEST(TetherdConfig, DefaultsAreTheDocumentedValues) {
    const DaemonConfig c = parse_ok(kMinimal);
    LONGS_EQUAL(1, c.endpoints.size());
    STRCMP_EQUAL("ws://localhost/", c.endpoints[0].c_str());
    CHECK(c.tls.ca_file.empty() && c.tls.cert_file.empty() && c.tls.key_file.empty());
    CHECK_FALSE(c.tls.has_pin);
    CHECK_FALSE(c.tls.insecure);
    CHECK(c.credentials.token_file.empty() && c.credentials.token_command.empty());
    STRCMP_EQUAL("tether", c.session.user.c_str());
    CHECK(c.session.device_id.empty());
    UNSIGNED_LONGS_EQUAL(64, c.session.ack_every);
    UNSIGNED_LONGS_EQUAL(200, c.session.ack_interval_ms);
    UNSIGNED_LONGS_EQUAL(1024, c.session.seq_reservation);
    UNSIGNED_LONGS_EQUAL(30000, c.heartbeat.interval_ms);
    UNSIGNED_LONGS_EQUAL(10000, c.heartbeat.pong_timeout_ms);
    UNSIGNED_LONGS_EQUAL(1, c.heartbeat.max_missed_pongs);
    UNSIGNED_LONGS_EQUAL(1000, c.backoff.initial_delay_ms);
    UNSIGNED_LONGS_EQUAL(32000, c.backoff.max_delay_ms);
    UNSIGNED_LONGS_EQUAL(2000, c.backoff.multiplier_permille);
    CHECK(c.backoff.jitter == tether::JitterMode::kFull);
    UNSIGNED_LONGS_EQUAL(0, c.backoff.max_attempts);
    UNSIGNED_LONGS_EQUAL(10000, c.backoff.healthy_after_ms);
    UNSIGNED_LONGS_EQUAL(10000, c.timeouts.resolve_ms);
    UNSIGNED_LONGS_EQUAL(10000, c.timeouts.connect_ms);
    UNSIGNED_LONGS_EQUAL(15000, c.timeouts.tls_ms);
    UNSIGNED_LONGS_EQUAL(10000, c.timeouts.handshake_ms);
    UNSIGNED_LONGS_EQUAL(10000, c.timeouts.resume_ms);
    UNSIGNED_LONGS_EQUAL(5000, c.timeouts.close_ms);
    UNSIGNED_LONGS_EQUAL(3, c.endpoint_pool.failure_threshold);
    UNSIGNED_LONGS_EQUAL(30000, c.endpoint_pool.cooldown_ms);
    UNSIGNED_LONGS_EQUAL(300000, c.endpoint_pool.max_cooldown_ms);
    UNSIGNED_LONGS_EQUAL(300000, c.endpoint_pool.return_to_primary_after_ms);
    UNSIGNED_LONGS_EQUAL(262144, c.outbox.size_bytes);
    CHECK(c.outbox.overflow == tether::OverflowPolicy::kDropOldest);
    UNSIGNED_LONGS_EQUAL(65536, c.outbox.max_message_size);
    CHECK_FALSE(c.spool.enabled);
    UNSIGNED_LONGS_EQUAL(8u * 1024u * 1024u, c.spool.max_bytes);
    UNSIGNED_LONGS_EQUAL(1000, c.spool.fsync_interval_ms);
    STRCMP_EQUAL("/var/lib/tether", c.state_dir.c_str());
    STRCMP_EQUAL("/run/tether", c.run_dir.c_str());
    CHECK_FALSE(c.inputs.stdin_lines);
    CHECK(c.inputs.socket.empty());
    CHECK_TRUE(c.inputs.health.enabled);
    UNSIGNED_LONGS_EQUAL(10000, c.inputs.health.period_ms);
    STRCMP_EQUAL("/", c.inputs.health.root.c_str());
    CHECK(c.inputs.health.interfaces.empty());
    CHECK(c.downlink.output == tether::daemon::DownlinkMode::kStdout);
    CHECK(c.downlink.command.empty());
    UNSIGNED_LONGS_EQUAL(10000, c.downlink.command_timeout_ms);
    UNSIGNED_LONGS_EQUAL(3, c.downlink.retries);
    UNSIGNED_LONGS_EQUAL(1000, c.downlink.retry_delay_ms);
    CHECK(c.downlink.dead_letter_dir.empty());
    STRCMP_EQUAL("/var/lib/tether/dead-letter", tether::daemon::dead_letter_dir(c).c_str());
    STRCMP_EQUAL("/run/tether/status.json", c.status.file.c_str());
    CHECK_FALSE(c.status.file_set);
    CHECK(c.status.led.empty());
    STRCMP_EQUAL("/sys/class/leds", c.status.led_root.c_str());
    CHECK(c.metrics.file.empty());
    UNSIGNED_LONGS_EQUAL(10000, c.metrics.interval_ms);
    CHECK(c.watchdog.device.empty());
    UNSIGNED_LONGS_EQUAL(5000, c.watchdog.interval_ms);
    CHECK(c.log_level == tether::daemon::LogLevel::kInfo);
}

TEST(TetherdConfig, ThePackagedExampleParses) {
    DaemonConfig c;
    std::string error;
    const bool ok = tether::daemon::load_config_file(example_path().c_str(), &c, &error);
    STRCMP_EQUAL("", error.c_str());
    CHECK_TRUE(ok);
    // What the packaged unit can run: nothing outside its directories, no
    // file no package ships.
    LONGS_EQUAL(1, c.endpoints.size());
    CHECK(c.tls.cert_file.empty());
    CHECK(c.tls.key_file.empty());
    CHECK(c.tls.ca_file.empty());
    CHECK_FALSE(c.tls.insecure);
    STRCMP_EQUAL("credential:token", c.credentials.token_file.c_str());
    CHECK_TRUE(c.spool.enabled);
    CHECK_FALSE(c.state_dir_set);
    CHECK_FALSE(c.run_dir_set);
    STRCMP_EQUAL("input.sock", c.inputs.socket.c_str());
    UNSIGNED_LONGS_EQUAL(0660, c.inputs.socket_mode);
    LONGS_EQUAL(0, c.inputs.health.interfaces.size());
    CHECK(c.downlink.output == tether::daemon::DownlinkMode::kStdout);
    CHECK(c.status.led.empty());
    CHECK_FALSE(c.status.file_set);
    STRCMP_EQUAL("tether.prom", c.metrics.file.c_str());
    CHECK(c.watchdog.device.empty());

    // Under the unit: everything inside the directories systemd gives.
    tether::daemon::ServiceEnvironment env;
    env.state_directory = "/var/lib/tether";
    env.runtime_directory = "/run/tether";
    env.credentials_directory = "/run/credentials/tetherd.service";
    CHECK_TRUE(tether::daemon::resolve_paths(&c, env, true, &error));
    STRCMP_EQUAL("/run/credentials/tetherd.service/token", c.credentials.token_file.c_str());
    STRCMP_EQUAL("token", c.credentials.token_credential.c_str());
    STRCMP_EQUAL("/run/tether/input.sock", c.inputs.socket.c_str());
    STRCMP_EQUAL("/run/tether/status.json", c.status.file.c_str());
    STRCMP_EQUAL("/run/tether/tether.prom", c.metrics.file.c_str());
    STRCMP_EQUAL("/var/lib/tether/dead-letter", tether::daemon::dead_letter_dir(c).c_str());
}

namespace {

DaemonConfig parsed(const char* json) {
    DaemonConfig c;
    std::string error;
    CHECK_TRUE_TEXT(tether::daemon::parse_config(json, std::strlen(json), &c, &error),
                    error.c_str());
    return c;
}

}  // namespace

TEST(TetherdConfig, TheServiceManagersDirectoriesAreUsedWhenTheFileLeavesThemNull) {
    DaemonConfig c = parsed(R"({"endpoints": ["ws://a/"], "state_dir": null, "run_dir": null,
                               "inputs": {"socket": "in.sock"}})");
    tether::daemon::ServiceEnvironment env;
    env.state_directory = "/scratch/state:/scratch/other";
    env.runtime_directory = "/scratch/run";
    std::string error;
    CHECK_TRUE(tether::daemon::resolve_paths(&c, env, true, &error));
    STRCMP_EQUAL("/scratch/state", c.state_dir.c_str());
    STRCMP_EQUAL("/scratch/run", c.run_dir.c_str());
    STRCMP_EQUAL("/scratch/run/status.json", c.status.file.c_str());
    STRCMP_EQUAL("/scratch/run/in.sock", c.inputs.socket.c_str());
    CHECK(c.metrics.file.empty());
}

TEST(TetherdConfig, WithoutTheEnvironmentTheBuiltInDirectoriesStay) {
    DaemonConfig c = parsed(R"({"endpoints": ["ws://a/"]})");
    std::string error;
    CHECK_TRUE(
        tether::daemon::resolve_paths(&c, tether::daemon::ServiceEnvironment{}, true, &error));
    STRCMP_EQUAL("/var/lib/tether", c.state_dir.c_str());
    STRCMP_EQUAL("/run/tether/status.json", c.status.file.c_str());
}

TEST(TetherdConfig, AnExplicitDirectoryWinsOverTheEnvironmentAndAnOverrideOverBoth) {
    DaemonConfig c = parsed(R"({"endpoints": ["ws://a/"], "state_dir": "/data/tether",
                               "status": {"file": "/srv/status.json"}})");
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&c, "run-dir", "/cli/run", &error));
    tether::daemon::ServiceEnvironment env;
    env.state_directory = "/env/state";
    env.runtime_directory = "/env/run";
    CHECK_TRUE(tether::daemon::resolve_paths(&c, env, true, &error));
    STRCMP_EQUAL("/data/tether", c.state_dir.c_str());
    STRCMP_EQUAL("/cli/run", c.run_dir.c_str());
    STRCMP_EQUAL("/srv/status.json", c.status.file.c_str());
}

TEST(TetherdConfig, ACredentialNameIsAFileInTheCredentialsDirectory) {
    DaemonConfig c = parsed(R"({"endpoints": ["wss://a/"],
        "tls": {"cert_file": "credential:client.crt", "key_file": "credential:client.key",
                "ca_file": "credential:ca.pem"},
        "credentials": {"token_file": "credential:token"}})");
    tether::daemon::ServiceEnvironment env;
    env.credentials_directory = "/run/credentials/tetherd.service";
    std::string error;
    CHECK_TRUE(tether::daemon::resolve_paths(&c, env, true, &error));
    STRCMP_EQUAL("/run/credentials/tetherd.service/client.crt", c.tls.cert_file.c_str());
    STRCMP_EQUAL("/run/credentials/tetherd.service/client.key", c.tls.key_file.c_str());
    STRCMP_EQUAL("/run/credentials/tetherd.service/ca.pem", c.tls.ca_file.c_str());
    STRCMP_EQUAL("/run/credentials/tetherd.service/token", c.credentials.token_file.c_str());
}

TEST(TetherdConfig, ACredentialWithoutTheCredentialsDirectoryIsOneClearError) {
    DaemonConfig c = parsed(R"({"endpoints": ["ws://a/"],
                               "credentials": {"token_file": "credential:token"}})");
    std::string error;
    CHECK_FALSE(
        tether::daemon::resolve_paths(&c, tether::daemon::ServiceEnvironment{}, true, &error));
    STRCMP_EQUAL(
        "credentials.token_file: \"credential:token\" needs $CREDENTIALS_DIRECTORY "
        "(systemd's LoadCredential=token:FILE in the unit); outside systemd give a path",
        error.c_str());
    // --check-config: the name is checked, the directory not needed.
    DaemonConfig checked = parsed(R"({"endpoints": ["ws://a/"],
                                     "credentials": {"token_file": "credential:token"}})");
    CHECK_TRUE(tether::daemon::resolve_paths(&checked, tether::daemon::ServiceEnvironment{}, false,
                                             &error));
    DaemonConfig bad = parsed(R"({"endpoints": ["ws://a/"],
                                 "credentials": {"token_file": "credential:../token"}})");
    CHECK_FALSE(
        tether::daemon::resolve_paths(&bad, tether::daemon::ServiceEnvironment{}, false, &error));
    STRCMP_CONTAINS("credentials.token_file: expected credential:NAME", error.c_str());
}

TEST(TetherdConfig, ASocketPathLongerThanSunPathIsRefusedWithItsLength) {
    const std::string dir(100, 'd');
    DaemonConfig c = parsed(R"({"endpoints": ["ws://a/"], "inputs": {"socket": "input.sock"}})");
    tether::daemon::ServiceEnvironment env;
    env.runtime_directory = "/" + dir;
    std::string error;
    CHECK_FALSE(tether::daemon::resolve_paths(&c, env, true, &error));
    STRCMP_CONTAINS("inputs.socket: ", error.c_str());
    STRCMP_CONTAINS(" is 112 bytes; a UNIX socket path holds at most 107", error.c_str());
}

TEST(TetherdConfig, TheSocketModeIsOctalInAString) {
    UNSIGNED_LONGS_EQUAL(0660, parsed(R"({"endpoints": ["ws://a/"]})").inputs.socket_mode);
    UNSIGNED_LONGS_EQUAL(0666,
                         parsed(R"({"endpoints": ["ws://a/"], "inputs": {"socket_mode": "0666"}})")
                             .inputs.socket_mode);
    STRCMP_EQUAL(
        "inputs.socket_mode: expected an octal mode 0000..0777 (e.g. \"0660\"), got \"0980\"",
        parse_error(R"({"endpoints": ["ws://a/"], "inputs": {"socket_mode": "0980"}})").c_str());
}

TEST(TetherdConfig, ThePlaceholderURLAndAMissingTokenAreNamedInOneLine) {
    DaemonConfig c;
    std::string error;
    CHECK_TRUE(tether::daemon::load_config_file(example_path().c_str(), &c, &error));
    tether::daemon::ServiceEnvironment env;
    env.credentials_directory = "/nonexistent/credentials";
    CHECK_TRUE(tether::daemon::resolve_paths(&c, env, true, &error));
    const std::string missing = tether::daemon::missing_for_start(c, "/etc/tether/tetherd.json");
    STRCMP_EQUAL(
        "endpoints[0]: \"wss://telemetry.example.com/tether\" is the example "
        "placeholder: put the server's URL in /etc/tether/tetherd.json; "
        "credentials.token_file: /nonexistent/credentials/token missing (No such file or "
        "directory): put the device's token in the file the unit loads as credential "
        "\"token\" (LoadCredential=token:/etc/tether/token in tetherd.service), then "
        "start it again",
        missing.c_str());
    DaemonConfig real =
        parsed(R"({"endpoints": ["wss://telemetry.example.org.eu/", "ws://gw.invalid.net/"]})");
    STRCMP_EQUAL("", tether::daemon::missing_for_start(real, "f").c_str());
    DaemonConfig docs =
        parsed(R"({"endpoints": ["ws://127.0.0.1/", "ws://EXAMPLE.NET/", "ws://a.b.invalid/"]})");
    STRCMP_CONTAINS("endpoints[1]", tether::daemon::missing_for_start(docs, "f").c_str());
    STRCMP_CONTAINS("endpoints[2]", tether::daemon::missing_for_start(docs, "f").c_str());
}

TEST(TetherdConfig, TheDocumentedExampleIsThePackagedExample) {
    std::vector<std::string> lines = tether::test::doc_section("docs/CONFIG.md", "config-example");
    CHECK(lines.size() > 2);
    STRCMP_EQUAL("```json", lines.front().c_str());
    STRCMP_EQUAL("```", lines.back().c_str());
    lines.erase(lines.begin());
    lines.pop_back();
    STRCMP_EQUAL(tether::test::join_lines(lines).c_str(), read_text(example_path()).c_str());
}

TEST(TetherdConfig, TheDocumentedFieldsAreExactlyTheParsersFields) {
    const std::vector<std::string> rows =
        tether::test::doc_section("docs/CONFIG.md", "config-fields");
    CHECK(rows.size() > 2);
    STRCMP_EQUAL("| path | type | default | meaning |", rows[0].c_str());
    std::vector<std::string> documented;
    for (std::size_t i = 2; i < rows.size(); ++i) {
        const std::vector<std::string> row = cells(rows[i]);
        LONGS_EQUAL(4, row.size());
        CHECK(!row[2].empty() && !row[3].empty());
        documented.push_back(row[0] + " : " + row[1]);
    }
    std::vector<std::string> parsed;
    for (const tether::daemon::ConfigField& field : tether::daemon::config_fields()) {
        parsed.push_back(field.path + " : " + field.type);
    }
    LONGS_EQUAL(83, parsed.size());
    STRCMP_EQUAL(tether::test::join_lines(parsed).c_str(),
                 tether::test::join_lines(documented).c_str());
}

TEST(TetherdConfig, EveryFieldIsReadAndTypeCheckedUnderItsPath) {
    // An object is the wrong type for every field, so each one must fail
    // naming itself: proof the parser really reads what config_fields() lists.
    for (const tether::daemon::ConfigField& field : tether::daemon::config_fields()) {
        const std::string error = parse_error(with_path(field.path, "{}"));
        const std::string expected = field.path + ": expected ";
        STRNCMP_EQUAL(expected.c_str(), error.c_str(), expected.size());
        STRCMP_CONTAINS(", got an object", error.c_str());
    }
}

TEST(TetherdConfig, UnknownFieldsAreErrorsInEverySection) {
    const char* const sections[] = {"tls",     "credentials", "session",       "heartbeat",
                                    "backoff", "timeouts",    "endpoint_pool", "outbox",
                                    "spool",   "inputs",      "inputs.health", "downlink",
                                    "status",  "metrics",     "watchdog",      "log"};
    for (const char* section : sections) {
        const std::string path = std::string(section) + ".colour";
        STRCMP_EQUAL((path + ": unknown field").c_str(), parse_error(with_path(path, "1")).c_str());
    }
    STRCMP_EQUAL("colour: unknown field", parse_error(with_member(R"("colour": 1)")).c_str());
    STRCMP_EQUAL("Endpoints: unknown field",
                 parse_error(with_member(R"("Endpoints": ["ws://a/"])")).c_str());
}

TEST(TetherdConfig, SectionsMustBeObjects) {
    STRCMP_EQUAL("tls: expected an object, got an array",
                 parse_error(with_member(R"("tls": [])")).c_str());
    STRCMP_EQUAL("inputs.health: expected an object, got a boolean",
                 parse_error(with_member(R"("inputs": {"health": false})")).c_str());
    STRCMP_EQUAL("log: expected an object, got null",
                 parse_error(with_member(R"("log": null)")).c_str());
    STRCMP_EQUAL("config: expected a JSON object, got an array", parse_error("[1]").c_str());
}

TEST(TetherdConfig, DuplicateFieldsAreErrors) {
    STRCMP_EQUAL(
        "heartbeat.interval_ms: duplicate field",
        parse_error(with_member(R"("heartbeat": {"interval_ms": 1000, "interval_ms": 2000})"))
            .c_str());
    STRCMP_EQUAL("endpoints: duplicate field",
                 parse_error(R"({"endpoints": ["ws://a/"], "endpoints": ["ws://b/"]})").c_str());
}

TEST(TetherdConfig, WrongTypesNameTheFieldAndTheTypeFound) {
    STRCMP_EQUAL("heartbeat.interval_ms: expected an integer, got a string",
                 parse_error(with_path("heartbeat.interval_ms", R"("30s")")).c_str());
    STRCMP_EQUAL("tls.insecure: expected true or false, got a string",
                 parse_error(with_path("tls.insecure", R"("yes")")).c_str());
    STRCMP_EQUAL("tls.ca_file: expected a string or null, got a number",
                 parse_error(with_path("tls.ca_file", "5")).c_str());
    STRCMP_EQUAL("session.user: expected a string, got null",
                 parse_error(with_path("session.user", "null")).c_str());
    STRCMP_EQUAL("backoff.multiplier: expected a number, got a string",
                 parse_error(with_path("backoff.multiplier", R"("2")")).c_str());
    STRCMP_EQUAL("backoff.jitter: expected one of none, full, equal, decorrelated, got a number",
                 parse_error(with_path("backoff.jitter", "1")).c_str());
    STRCMP_EQUAL("inputs.health.interfaces: expected an array of interface names, got a string",
                 parse_error(with_path("inputs.health.interfaces", R"("eth0")")).c_str());
    STRCMP_EQUAL("inputs.health.interfaces[1]: expected a string, got a number",
                 parse_error(with_path("inputs.health.interfaces", R"(["eth0", 7])")).c_str());
    STRCMP_EQUAL("endpoints: expected an array of URLs, got a string",
                 parse_error(R"({"endpoints": "ws://a/"})").c_str());
    STRCMP_EQUAL("endpoints[0]: expected a string, got a number",
                 parse_error(R"({"endpoints": [1]})").c_str());
}

TEST(TetherdConfig, ValuesOutOfRangeNameTheRange) {
    STRCMP_EQUAL("heartbeat.max_missed_pongs: expected 1..1000, got 0",
                 parse_error(with_path("heartbeat.max_missed_pongs", "0")).c_str());
    STRCMP_EQUAL("heartbeat.pong_timeout_ms: expected 1..86400000, got -5",
                 parse_error(with_path("heartbeat.pong_timeout_ms", "-5")).c_str());
    STRCMP_EQUAL("timeouts.connect_ms: expected an integer, got 1.5",
                 parse_error(with_path("timeouts.connect_ms", "1.5")).c_str());
    STRCMP_EQUAL("backoff.max_attempts: expected 0..4294967295, got 4294967296",
                 parse_error(with_path("backoff.max_attempts", "4294967296")).c_str());
    STRCMP_EQUAL("spool.max_bytes: expected 65536..4294967295, got 1e+20",
                 parse_error(with_path("spool.max_bytes", "1e20")).c_str());
    STRCMP_EQUAL("backoff.multiplier: expected 1..10, got 0.5",
                 parse_error(with_path("backoff.multiplier", "0.5")).c_str());
    STRCMP_EQUAL("backoff.multiplier: expected 1..10, got 10.5",
                 parse_error(with_path("backoff.multiplier", "10.5")).c_str());
    STRCMP_EQUAL("outbox.size_bytes: expected 4096..1073741824, got 1024",
                 parse_error(with_path("outbox.size_bytes", "1024")).c_str());
    STRCMP_EQUAL("inputs.health.period_ms: expected 1000..86400000, got 999",
                 parse_error(with_path("inputs.health.period_ms", "999")).c_str());
    STRCMP_EQUAL("watchdog.interval_ms: expected 100..600000, got 600001",
                 parse_error(with_path("watchdog.interval_ms", "600001")).c_str());
    STRCMP_EQUAL("session.ack_every: expected 1..65536, got 0",
                 parse_error(with_path("session.ack_every", "0")).c_str());
}

TEST(TetherdConfig, SpoolSizesBeyondItsThirtyTwoBitOffsetsAreRefused) {
    STRCMP_EQUAL("spool.max_bytes: expected 65536..4294967295, got 4294967296",
                 parse_error(with_path("spool.max_bytes", "4294967296")).c_str());
    STRCMP_EQUAL("spool.max_bytes: expected 65536..4294967295, got 68719476736",
                 parse_error(with_path("spool.max_bytes", "68719476736")).c_str());
    const DaemonConfig c = parse_ok(with_path("spool.max_bytes", "4294967295"));
    UNSIGNED_LONGS_EQUAL(4294967295u, c.spool.max_bytes);
    tether::SpoolConfig spool;
    spool.max_bytes = c.spool.max_bytes;
    UNSIGNED_LONGS_EQUAL(4294967295u, spool.max_bytes);
}

TEST(TetherdConfig, TheLargestMessageAllowedFitsAnEmptyOutbox) {
    const std::size_t sizes[] = {4096, 4097, 4100, 4103, 4104, 262144};
    for (std::size_t size : sizes) {
        const std::string room = std::to_string(tether::Outbox::max_message_size_for(size));
        const std::string more = std::to_string(tether::Outbox::max_message_size_for(size) + 1);
        const std::string outbox =
            R"("outbox": {"size_bytes": )" + std::to_string(size) + R"(, "max_message_size": )";
        // tetherd's outbox is heap memory, as here.
        std::vector<std::uint8_t> storage(size);
        tether::Outbox empty(storage.data(), storage.size(), tether::OverflowPolicy::kDropOldest,
                             1);
        UNSIGNED_LONGS_EQUAL(empty.max_message_size(), tether::Outbox::max_message_size_for(size));
        parse_ok(with_member(outbox + room + "}"));
        STRCMP_CONTAINS("outbox.max_message_size: must fit in an empty outbox",
                        parse_error(with_member(outbox + more + "}")).c_str());
    }
}

TEST(TetherdConfig, FieldsThatDependOnEachOtherAreChecked) {
    STRCMP_EQUAL(
        "backoff.max_ms: must be at least backoff.initial_ms (5000), got 4000",
        parse_error(with_member(R"("backoff": {"initial_ms": 5000, "max_ms": 4000})")).c_str());
    STRCMP_EQUAL(
        "endpoint_pool.max_cooldown_ms: must be at least endpoint_pool.cooldown_ms (60000), got "
        "30000",
        parse_error(
            with_member(R"("endpoint_pool": {"cooldown_ms": 60000, "max_cooldown_ms": 30000})"))
            .c_str());
    STRCMP_EQUAL(
        "heartbeat: interval_ms + max_missed_pongs * pong_timeout_ms must be at most 86400000 "
        "(one day), got 86400001",
        parse_error(with_member(R"("heartbeat": {"interval_ms": 86400000, "pong_timeout_ms": 1})"))
            .c_str());
    STRCMP_EQUAL(
        "outbox.max_message_size: must fit in an empty outbox of outbox.size_bytes (at most "
        "4080), got 4081",
        parse_error(with_member(R"("outbox": {"size_bytes": 4100, "max_message_size": 4081})"))
            .c_str());
    // The limits themselves are accepted.
    const DaemonConfig c = parse_ok(with_member(
        R"("outbox": {"size_bytes": 4100, "max_message_size": 4080}, )"
        R"("heartbeat": {"interval_ms": 0, "pong_timeout_ms": 86400000, "max_missed_pongs": 2}, )"
        R"("backoff": {"initial_ms": 5000, "max_ms": 5000, "multiplier": 1.25})"));
    UNSIGNED_LONGS_EQUAL(4080, c.outbox.max_message_size);
    UNSIGNED_LONGS_EQUAL(0, c.heartbeat.interval_ms);
    UNSIGNED_LONGS_EQUAL(1250, c.backoff.multiplier_permille);
}

TEST(TetherdConfig, EndpointsAreRequiredAndValidated) {
    STRCMP_EQUAL("endpoints: required: a list of 1..8 ws:// or wss:// URLs",
                 parse_error("{}").c_str());
    STRCMP_EQUAL("endpoints: expected 1..8 URLs, got 0",
                 parse_error(R"({"endpoints": []})").c_str());
    STRCMP_EQUAL("endpoints: expected 1..8 URLs, got 9",
                 parse_error(R"({"endpoints": ["ws://a/", "ws://a/", "ws://a/", "ws://a/",)"
                             R"( "ws://a/", "ws://a/", "ws://a/", "ws://a/", "ws://a/"]})")
                     .c_str());
    STRCMP_EQUAL("endpoints[1]: bad URL \"http://b.example/\": the scheme must be ws:// or wss://",
                 parse_error(R"({"endpoints": ["ws://a/", "http://b.example/"]})").c_str());
    STRCMP_EQUAL(
        "endpoints[0]: bad URL \"wss://u:p@a/\": credentials in a URL are not allowed (use "
        "credentials.token_file)",
        parse_error(R"({"endpoints": ["wss://u:p@a/"]})").c_str());
    STRCMP_EQUAL("endpoints[0]: bad URL \"ws://a:0/\": bad port (expected 1..65535)",
                 parse_error(R"({"endpoints": ["ws://a:0/"]})").c_str());
    STRCMP_EQUAL("endpoints[0]: bad URL \"ws://a/#x\": a fragment (#) is not allowed",
                 parse_error(R"({"endpoints": ["ws://a/#x"]})").c_str());
    STRCMP_EQUAL("endpoints[0]: bad URL \"ws:///\": bad host",
                 parse_error(R"({"endpoints": ["ws:///"]})").c_str());
    STRCMP_EQUAL(
        "endpoints[0]: bad URL \"ws://a/\\x09\": bad path (too long, or not visible ASCII)",
        parse_error("{\"endpoints\": [\"ws://a/\\t\"]}").c_str());
    const DaemonConfig eight =
        parse_ok(R"({"endpoints": ["ws://a/", "wss://b/", "ws://c/", "ws://d/",)"
                 R"( "ws://e/", "ws://f/", "ws://g/", "wss://h:8443/x?y=1"]})");
    LONGS_EQUAL(8, eight.endpoints.size());
}

TEST(TetherdConfig, TlsCertificateAndKeyComeTogether) {
    STRCMP_EQUAL("tls.cert_file: requires tls.key_file (both or neither)",
                 parse_error(with_path("tls.cert_file", R"("/etc/c.pem")")).c_str());
    STRCMP_EQUAL("tls.key_file: requires tls.cert_file (both or neither)",
                 parse_error(with_path("tls.key_file", R"("/etc/k.pem")")).c_str());
    STRCMP_EQUAL("tls.ca_file: expected a non-empty path",
                 parse_error(with_path("tls.ca_file", R"("")")).c_str());
}

TEST(TetherdConfig, PinsAreHexOrBase64AndNeverInsecure) {
    const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    const DaemonConfig from_hex = parse_ok(with_path("tls.pin_sha256", "\"" + hex + "\""));
    CHECK_TRUE(from_hex.tls.has_pin);
    for (std::size_t i = 0; i < 32; ++i) {
        UNSIGNED_LONGS_EQUAL(i, from_hex.tls.pin_sha256[i]);
    }
    // The same 32 bytes in base64.
    const DaemonConfig from_base64 =
        parse_ok(with_path("tls.pin_sha256", R"("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")"));
    MEMCMP_EQUAL(from_hex.tls.pin_sha256, from_base64.tls.pin_sha256, 32);
    STRCMP_EQUAL(
        "tls.pin_sha256: expected 64 hex digits or 44 base64 characters (SHA-256), got \"abc\"",
        parse_error(with_path("tls.pin_sha256", R"("abc")")).c_str());
    const std::string bad_hex = "g" + hex.substr(1);
    STRCMP_CONTAINS("tls.pin_sha256: expected 64 hex digits",
                    parse_error(with_path("tls.pin_sha256", "\"" + bad_hex + "\"")).c_str());
    // Not canonical (the last character's low bits set), a bad character, padding.
    STRCMP_CONTAINS("tls.pin_sha256: expected",
                    parse_error(with_path("tls.pin_sha256",
                                          R"("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=")"))
                        .c_str());
    STRCMP_CONTAINS("tls.pin_sha256: expected",
                    parse_error(with_path("tls.pin_sha256",
                                          R"("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH*8=")"))
                        .c_str());
    STRCMP_CONTAINS("tls.pin_sha256: expected",
                    parse_error(with_path("tls.pin_sha256",
                                          R"("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A")"))
                        .c_str());
    STRCMP_EQUAL(
        "tls.insecure: cannot be combined with tls.pin_sha256 (insecure checks nothing)",
        parse_error(with_member(R"("tls": {"pin_sha256": ")" + hex + R"(", "insecure": true})"))
            .c_str());
    const DaemonConfig base64_alphabet =
        parse_ok(with_path("tls.pin_sha256", R"("+/9azAZ+/9azAZ+/9azAZ+/9azAZ+/9azAZ+/9azAZ0=")"));
    UNSIGNED_LONGS_EQUAL(0xFB, base64_alphabet.tls.pin_sha256[0]);
}

TEST(TetherdConfig, TokenFileAndTokenCommandExcludeEachOther) {
    STRCMP_EQUAL("credentials.token_command: not allowed together with credentials.token_file",
                 parse_error(with_member(R"("credentials": {"token_file": "/etc/t", )"
                                         R"("token_command": "get-token"})"))
                     .c_str());
    STRCMP_EQUAL("credentials.token_command: expected a non-empty command",
                 parse_error(with_path("credentials.token_command", R"(" \t ")")).c_str());
    const DaemonConfig c = parse_ok(with_path("credentials.token_command", R"("get-token -q")"));
    STRCMP_EQUAL("get-token -q", c.credentials.token_command.c_str());
}

TEST(TetherdConfig, DownlinkCommandIsRequiredExactlyWithCommandOutput) {
    STRCMP_EQUAL("downlink.command: required when downlink.output is \"command\"",
                 parse_error(with_path("downlink.output", R"("command")")).c_str());
    STRCMP_EQUAL("downlink.command: only used when downlink.output is \"command\"",
                 parse_error(with_path("downlink.command", R"("/bin/handle")")).c_str());
    STRCMP_EQUAL("downlink.output: expected one of stdout, command, got \"file\"",
                 parse_error(with_path("downlink.output", R"("file")")).c_str());
}

TEST(TetherdConfig, DownlinkRetriesAndTheDeadLetterDirectoryAreValidated) {
    STRCMP_EQUAL("downlink.command_timeout_ms: expected 100..3600000, got 99",
                 parse_error(with_path("downlink.command_timeout_ms", "99")).c_str());
    STRCMP_EQUAL("downlink.retries: expected 0..100, got 101",
                 parse_error(with_path("downlink.retries", "101")).c_str());
    STRCMP_EQUAL("downlink.retry_delay_ms: expected 0..3600000, got 3600001",
                 parse_error(with_path("downlink.retry_delay_ms", "3600001")).c_str());
    STRCMP_EQUAL("downlink.dead_letter_dir: expected a non-empty path",
                 parse_error(with_path("downlink.dead_letter_dir", R"("")")).c_str());
    STRCMP_EQUAL(
        "downlink.dead_letter_dir: longer than 4066 bytes (no room for its file names)",
        parse_error(with_path("downlink.dead_letter_dir", "\"/" + std::string(4066, 'd') + "\""))
            .c_str());
    STRCMP_EQUAL("downlink.dead_letter_dir: must not be state_dir itself",
                 parse_error(with_member(R"("state_dir": "/data/t",)"
                                         R"( "downlink": {"dead_letter_dir": "/data/t"})"))
                     .c_str());
    DaemonConfig c =
        parse_ok(with_member(R"("downlink": {"output": "command", "command": "h", "retries": 0,)"
                             R"( "retry_delay_ms": 0, "command_timeout_ms": 100,)"
                             R"( "dead_letter_dir": "/data/dead"})"));
    UNSIGNED_LONGS_EQUAL(0, c.downlink.retries);
    UNSIGNED_LONGS_EQUAL(0, c.downlink.retry_delay_ms);
    UNSIGNED_LONGS_EQUAL(100, c.downlink.command_timeout_ms);
    STRCMP_EQUAL("/data/dead", tether::daemon::dead_letter_dir(c).c_str());
    // Not set, it follows state_dir, through the override too.
    DaemonConfig moved = parse_ok(kMinimal);
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&moved, "state-dir", "/data/tether", &error));
    STRCMP_EQUAL("/data/tether/dead-letter", tether::daemon::dead_letter_dir(moved).c_str());
}

TEST(TetherdConfig, BadEnumStringsListTheChoices) {
    STRCMP_EQUAL(
        "backoff.jitter: expected one of none, full, equal, decorrelated, got \"sometimes\"",
        parse_error(with_path("backoff.jitter", R"("sometimes")")).c_str());
    STRCMP_EQUAL("outbox.overflow: expected one of drop_oldest, reject_newest, got \"Drop_Oldest\"",
                 parse_error(with_path("outbox.overflow", R"("Drop_Oldest")")).c_str());
    STRCMP_EQUAL("log.level: expected one of debug, info, warn, error, got \"verbose\"",
                 parse_error(with_path("log.level", R"("verbose")")).c_str());
    // Control characters in a quoted value are escaped.
    STRCMP_EQUAL("log.level: expected one of debug, info, warn, error, got \"a\\x0ab\\x22\"",
                 parse_error(with_path("log.level", R"("a\nb\"")")).c_str());
    const std::string long_value(100, 'x');
    STRCMP_EQUAL(("log.level: expected one of debug, info, warn, error, got \"" +
                  std::string(64, 'x') + "...\"")
                     .c_str(),
                 parse_error(with_path("log.level", "\"" + long_value + "\"")).c_str());
    const DaemonConfig c = parse_ok(with_member(
        R"("backoff": {"jitter": "decorrelated"}, "outbox": {"overflow": "reject_newest"}, )"
        R"("log": {"level": "debug"})"));
    CHECK(c.backoff.jitter == tether::JitterMode::kDecorrelated);
    CHECK(c.outbox.overflow == tether::OverflowPolicy::kRejectNewest);
    CHECK(c.log_level == tether::daemon::LogLevel::kDebug);
}

TEST(TetherdConfig, NamesAndIdentifiersAreChecked) {
    STRCMP_EQUAL("session.device_id: expected printable ASCII without spaces, got \"pi 4\"",
                 parse_error(with_path("session.device_id", R"("pi 4")")).c_str());
    STRCMP_EQUAL("session.user: expected 1..255 characters",
                 parse_error(with_path("session.user", R"("")")).c_str());
    STRCMP_EQUAL(
        "status.led: expected a name of 1..64 printable characters without '/', got \"../led0\"",
        parse_error(with_path("status.led", R"("../led0")")).c_str());
    STRCMP_CONTAINS("status.led: expected a name",
                    parse_error(with_path("status.led", R"("..")")).c_str());
    STRCMP_EQUAL(
        "inputs.health.interfaces[0]: expected a name of 1..15 printable characters without '/', "
        "got \"a-very-long-interface\"",
        parse_error(with_path("inputs.health.interfaces", R"(["a-very-long-interface"])")).c_str());
    std::string names = "[\"e\"";
    for (int i = 0; i < 32; ++i) {
        names += ",\"e\"";
    }
    STRCMP_EQUAL("inputs.health.interfaces: expected at most 32 names, got 33",
                 parse_error(with_path("inputs.health.interfaces", names + "]")).c_str());
    const std::string too_long_path = "\"/" + std::string(4095, 'p') + "\"";
    STRCMP_EQUAL("state_dir: longer than 4095 bytes",
                 parse_error(with_member("\"state_dir\": " + too_long_path)).c_str());
    const DaemonConfig c = parse_ok(with_member(
        R"("session": {"device_id": "pi-7f3a"}, "status": {"led": "ACT", "file": "/tmp/s.json"}, )"
        R"("inputs": {"stdin": true, "socket": null, "health": {"interfaces": []}})"));
    STRCMP_EQUAL("pi-7f3a", c.session.device_id.c_str());
    STRCMP_EQUAL("/tmp/s.json", c.status.file.c_str());
    CHECK_TRUE(c.status.file_set);
    CHECK_TRUE(c.inputs.stdin_lines);
}

TEST(TetherdConfig, TextThatIsNotJsonGivesThePosition) {
    STRCMP_EQUAL("not JSON: syntax error at line 2, column 15 (byte 17)",
                 parse_error("{\n\"endpoints\": [ws://a/]}").c_str());
    STRCMP_EQUAL("not JSON: syntax error at line 1, column 1 (byte 1)",
                 parse_error("endpoints = ws://a/").c_str());
    STRCMP_EQUAL("config is empty", parse_error("").c_str());
    STRCMP_EQUAL("config is empty", parse_error(" \n\t\r\n").c_str());
    STRCMP_EQUAL("not JSON: trailing characters at line 1, column 36 (byte 36)",
                 parse_error(std::string(kMinimal) + " }").c_str());
    STRCMP_EQUAL("not JSON: trailing characters at line 2, column 1 (byte 36)",
                 parse_error(std::string(kMinimal) + "\n{}").c_str());
    // Trailing whitespace is fine; the text need not be NUL-terminated.
    const std::string padded = std::string(kMinimal) + "\n\n";
    parse_ok(padded);
    const std::string bytes = std::string(kMinimal) + "garbage";
    DaemonConfig c;
    std::string error;
    CHECK_TRUE(tether::daemon::parse_config(bytes.data(), std::strlen(kMinimal), &c, &error));
    // A null error pointer is allowed.
    CHECK_FALSE(tether::daemon::parse_config("{", 1, &c, nullptr));
}

TEST(TetherdConfig, LoadingAFileNamesTheFileInErrors) {
    tether::test::TempDir dir;
    const std::string bad = dir.write_file("bad.json", with_path("log.level", R"("loud")"));
    DaemonConfig c;
    std::string error;
    CHECK_FALSE(tether::daemon::load_config_file(bad.c_str(), &c, &error));
    STRCMP_EQUAL(
        (bad + ": log.level: expected one of debug, info, warn, error, got \"loud\"").c_str(),
        error.c_str());
    const std::string missing = dir.file("missing.json");
    CHECK_FALSE(tether::daemon::load_config_file(missing.c_str(), &c, &error));
    STRCMP_EQUAL((missing + ": cannot read: No such file or directory").c_str(), error.c_str());
    const std::string empty = dir.write_file("empty.json", "");
    CHECK_FALSE(tether::daemon::load_config_file(empty.c_str(), &c, &error));
    STRCMP_EQUAL((empty + ": config is empty").c_str(), error.c_str());
    const std::string huge =
        dir.write_file("huge.json", std::string(kMinimal) + std::string(1024 * 1024, ' '));
    CHECK_FALSE(tether::daemon::load_config_file(huge.c_str(), &c, &error));
    STRCMP_EQUAL((huge + ": larger than 1 MiB").c_str(), error.c_str());
    const std::string good = dir.write_file("good.json", kMinimal);
    CHECK_TRUE(tether::daemon::load_config_file(good.c_str(), &c, nullptr));
}

namespace {

// Interrupts a blocking open() or read() after two seconds, so a regression
// that waits on a FIFO fails the test instead of hanging the suite.
class BlockingCallGuard {
  public:
    BlockingCallGuard() {
        struct sigaction action {};
        action.sa_handler = [](int) {};
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;  // no SA_RESTART: the blocked call fails with EINTR
        ::sigaction(SIGALRM, &action, &previous_);
        ::alarm(2);
    }
    ~BlockingCallGuard() {
        ::alarm(0);
        ::sigaction(SIGALRM, &previous_, nullptr);
    }
    BlockingCallGuard(const BlockingCallGuard&) = delete;
    BlockingCallGuard& operator=(const BlockingCallGuard&) = delete;

  private:
    struct sigaction previous_ {};
};

}  // namespace

TEST(TetherdConfig, OnlyARegularFileIsReadAsTheConfig) {
    tether::test::TempDir dir;
    DaemonConfig c;
    std::string error;
    const std::string fifo = dir.file("fifo.json");
    CHECK_EQUAL(0, ::mkfifo(fifo.c_str(), 0600));
    {
        BlockingCallGuard guard;  // no writer: a blocking open would wait forever
        CHECK_FALSE(tether::daemon::load_config_file(fifo.c_str(), &c, &error));
    }
    STRCMP_EQUAL((fifo + ": not a regular file (a FIFO)").c_str(), error.c_str());
    // Endless bytes: refused before any is read.
    CHECK_FALSE(tether::daemon::load_config_file("/dev/zero", &c, &error));
    STRCMP_EQUAL("/dev/zero: not a regular file (a character device)", error.c_str());
    CHECK_FALSE(tether::daemon::load_config_file(dir.path().c_str(), &c, &error));
    STRCMP_EQUAL((dir.path() + ": not a regular file (a directory)").c_str(), error.c_str());
    // A symlink to a regular file is fine (/etc often holds them).
    const std::string good = dir.write_file("good.json", kMinimal);
    const std::string link = dir.file("link.json");
    CHECK_EQUAL(0, ::symlink(good.c_str(), link.c_str()));
    CHECK_TRUE(tether::daemon::load_config_file(link.c_str(), &c, &error));
}

TEST(TetherdConfig, StatusFileFollowsTheRunDirectoryUnlessSet) {
    DaemonConfig c = parse_ok(with_member(R"("run_dir": "/tmp/run")"));
    STRCMP_EQUAL("/tmp/run/status.json", c.status.file.c_str());
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&c, "run-dir", "/srv/run", &error));
    STRCMP_EQUAL("/srv/run/status.json", c.status.file.c_str());
    c = parse_ok(with_member(R"("status": {"file": "/var/s.json"})"));
    CHECK_TRUE(tether::daemon::apply_override(&c, "run-dir", "/srv/run", &error));
    STRCMP_EQUAL("/var/s.json", c.status.file.c_str());
    STRCMP_EQUAL("/srv/run", c.run_dir.c_str());
}

TEST(TetherdConfig, EndpointOverrideReplacesTheListThenAppends) {
    DaemonConfig c = parse_ok(R"({"endpoints": ["ws://file-a/", "ws://file-b/"]})");
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&c, "endpoint", "wss://cli-a/", &error));
    LONGS_EQUAL(1, c.endpoints.size());
    STRCMP_EQUAL("wss://cli-a/", c.endpoints[0].c_str());
    CHECK_TRUE(tether::daemon::apply_override(&c, "endpoint", "wss://cli-b/", &error));
    LONGS_EQUAL(2, c.endpoints.size());
    STRCMP_EQUAL("wss://cli-b/", c.endpoints[1].c_str());
    for (int i = 2; i < 8; ++i) {
        CHECK_TRUE(tether::daemon::apply_override(&c, "endpoint", "ws://more/", &error));
    }
    CHECK_FALSE(tether::daemon::apply_override(&c, "endpoint", "ws://ninth/", &error));
    STRCMP_EQUAL("--endpoint: at most 8 endpoints", error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "endpoint", "tcp://x/", &error));
    STRCMP_EQUAL("--endpoint: bad URL \"tcp://x/\": the scheme must be ws:// or wss://",
                 error.c_str());
    LONGS_EQUAL(8, c.endpoints.size());
}

TEST(TetherdConfig, OverridesSetTheirFieldsAndValidateLikeTheFile) {
    DaemonConfig c = parse_ok(with_path("credentials.token_command", R"("get-token")"));
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&c, "state-dir", "/data/tether", &error));
    STRCMP_EQUAL("/data/tether", c.state_dir.c_str());
    CHECK_TRUE(tether::daemon::apply_override(&c, "log-level", "warn", &error));
    CHECK(c.log_level == tether::daemon::LogLevel::kWarn);
    CHECK_TRUE(tether::daemon::apply_override(&c, "device-id", "gw-17", &error));
    STRCMP_EQUAL("gw-17", c.session.device_id.c_str());
    CHECK_TRUE(tether::daemon::apply_override(&c, "user", "fleet", &error));
    STRCMP_EQUAL("fleet", c.session.user.c_str());
    CHECK_TRUE(tether::daemon::apply_override(&c, "token-file", "/etc/tok", &error));
    STRCMP_EQUAL("/etc/tok", c.credentials.token_file.c_str());
    CHECK(c.credentials.token_command.empty());
    CHECK_TRUE(tether::daemon::apply_override(&c, "token-command", "cat /x", &error));
    STRCMP_EQUAL("cat /x", c.credentials.token_command.c_str());
    CHECK(c.credentials.token_file.empty());
    CHECK_TRUE(tether::daemon::apply_override(&c, "ca-file", "/etc/ca.pem", &error));
    STRCMP_EQUAL("/etc/ca.pem", c.tls.ca_file.c_str());

    const DaemonConfig before = c;
    CHECK_FALSE(tether::daemon::apply_override(&c, "log-level", "loud", &error));
    STRCMP_EQUAL("--log-level: expected one of debug, info, warn, error, got \"loud\"",
                 error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "device-id", "a b", &error));
    STRCMP_EQUAL("--device-id: expected printable ASCII without spaces, got \"a b\"",
                 error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "state-dir", "", &error));
    STRCMP_EQUAL("--state-dir: expected a non-empty path", error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "token-command", "", &error));
    STRCMP_EQUAL("--token-command: expected a non-empty command", error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "ca-file", nullptr, &error));
    STRCMP_EQUAL("option '--ca-file' needs a value (see --help)", error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "colour", "red", &error));
    STRCMP_EQUAL("unknown option '--colour' (see --help)", error.c_str());
    CHECK_FALSE(tether::daemon::apply_override(&c, "pin-sha256", "xyz", nullptr));
    // Failed overrides changed nothing.
    CHECK(before.log_level == c.log_level);
    STRCMP_EQUAL(before.session.device_id.c_str(), c.session.device_id.c_str());
    STRCMP_EQUAL(before.state_dir.c_str(), c.state_dir.c_str());
    STRCMP_EQUAL(before.credentials.token_command.c_str(), c.credentials.token_command.c_str());
    CHECK_FALSE(c.tls.has_pin);
}

TEST(TetherdConfig, InsecureAndPinOverridesExcludeEachOther) {
    DaemonConfig c = parse_ok(kMinimal);
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&c, "insecure", nullptr, &error));
    CHECK_TRUE(c.tls.insecure);
    CHECK_FALSE(tether::daemon::apply_override(
        &c, "pin-sha256", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &error));
    STRCMP_EQUAL("--pin-sha256: cannot be combined with tls.insecure", error.c_str());
    CHECK_TRUE(tether::daemon::apply_override(&c, "insecure", "false", &error));
    CHECK_FALSE(c.tls.insecure);
    CHECK_FALSE(tether::daemon::apply_override(&c, "insecure", "maybe", &error));
    STRCMP_EQUAL("--insecure: expected no value, true or false, got \"maybe\"", error.c_str());
    CHECK_TRUE(tether::daemon::apply_override(
        &c, "pin-sha256", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &error));
    CHECK_TRUE(c.tls.has_pin);
    UNSIGNED_LONGS_EQUAL(0x1F, c.tls.pin_sha256[31]);
    CHECK_FALSE(tether::daemon::apply_override(&c, "insecure", "true", &error));
    STRCMP_EQUAL("--insecure: cannot be combined with tls.pin_sha256", error.c_str());
    CHECK_FALSE(c.tls.insecure);
}

TEST(TetherdConfig, HelpListsEveryOverride) {
    tether::test::TempDir dir;
    const std::string path = dir.file("help.txt");
    std::FILE* out = std::fopen(path.c_str(), "w");
    CHECK(out != nullptr);
    tether::daemon::print_override_help(out);
    std::fclose(out);
    const std::string help = read_text(path);
    std::size_t count = 0;
    const tether::daemon::OverrideSpec* specs = tether::daemon::override_specs(&count);
    LONGS_EQUAL(11, count);
    std::size_t lines = 0;
    for (char c : help) {
        lines += c == '\n' ? 1u : 0u;
    }
    LONGS_EQUAL(count, lines);
    for (std::size_t i = 0; i < count; ++i) {
        STRCMP_CONTAINS((std::string("--") + specs[i].name).c_str(), help.c_str());
        CHECK(tether::daemon::find_override(specs[i].name) == &specs[i]);
    }
    STRCMP_CONTAINS("  --endpoint URL         server URL", help.c_str());
    STRCMP_CONTAINS("  --insecure             do not verify", help.c_str());
    CHECK(tether::daemon::find_override("nope") == nullptr);
    // Every override's field is a documented field.
    const std::string doc = read_text(std::string(TETHER_SOURCE_DIR) + "/docs/CONFIG.md");
    for (std::size_t i = 0; i < count; ++i) {
        STRCMP_CONTAINS(("| `" + std::string(specs[i].field) + "` |").c_str(), doc.c_str());
        STRCMP_CONTAINS(("| `--" + std::string(specs[i].name)).c_str(), doc.c_str());
    }
}

TEST(TetherdConfig, DescribeIsOneLineWithoutSecrets) {
    STRCMP_EQUAL(
        "endpoints=ws://localhost/ tls=ca:system credentials=none user=tether device=machine-id "
        "heartbeat=30000/10000ms/1 backoff=1000..32000ms,x2.000,full,attempts:0 "
        "outbox=262144,drop_oldest,max_message:65536 spool=off state_dir=/var/lib/tether "
        "run_dir=/run/tether inputs=health downlink=stdout state=off "
        "status=/run/tether/status.json "
        "metrics=off watchdog=off compression=off log=info",
        tether::daemon::describe(parse_ok(kMinimal)).c_str());
    const DaemonConfig c = parse_ok(
        R"({"endpoints": ["wss://a/t?token=SECRET1", "ws://b/"],)"
        R"( "credentials": {"token_command": "echo SECRET2"},)"
        R"( "tls": {"cert_file": "/c", "key_file": "/k", "ca_file": "/ca",)"
        R"( "pin_sha256": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},)"
        R"( "heartbeat": {"interval_ms": 0}, "spool": {"enabled": true},)"
        R"( "inputs": {"stdin": true, "socket": "/run/in.sock", "health": {"enabled": false}},)"
        R"( "downlink": {"output": "command", "command": "handle SECRET3"},)"
        R"( "status": {"led": "led0"}, "metrics": {"file": "/m.prom"},)"
        R"( "watchdog": {"device": "/dev/watchdog"}, "session": {"device_id": "gw"}})");
    const std::string line = tether::daemon::describe(c);
    STRCMP_EQUAL(
        "endpoints=wss://a/t?...,ws://b/ tls=ca:/ca,client-cert:/c,pinned "
        "credentials=token_command user=tether device=gw heartbeat=off "
        "backoff=1000..32000ms,x2.000,full,attempts:0 outbox=262144,drop_oldest,max_message:65536 "
        "spool=8388608 state_dir=/var/lib/tether run_dir=/run/tether "
        "inputs=stdin,socket:/run/in.sock downlink=command state=off "
        "status=/run/tether/status.json "
        "led=led0 metrics=/m.prom watchdog=/dev/watchdog compression=off log=info",
        line.c_str());
    CHECK(line.find("SECRET") == std::string::npos);
    CHECK(line.find('\n') == std::string::npos);
    DaemonConfig other = parse_ok(with_path("credentials.token_file", R"("/etc/tok")"));
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&other, "insecure", nullptr, &error));
    other.inputs.health.enabled = false;
    const std::string other_line = tether::daemon::describe(other);
    STRCMP_CONTAINS(" tls=INSECURE credentials=token_file:/etc/tok ", other_line.c_str());
    STRCMP_CONTAINS(" inputs=none ", other_line.c_str());
}

TEST(TetherdConfig, ClientConfigIsFilledFromEverySection) {
    const DaemonConfig c = parse_ok(
        R"({"endpoints": ["ws://a/", "wss://b:8443/x", "WSS://c/"],)"
        R"( "tls": {"ca_file": "/ca", "cert_file": "/c", "key_file": "/k",)"
        R"( "pin_sha256": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},)"
        R"( "session": {"device_id": "gw", "ack_every": 8, "ack_interval_ms": 50,)"
        R"( "seq_reservation": 99},)"
        R"( "heartbeat": {"interval_ms": 15000, "pong_timeout_ms": 4000, "max_missed_pongs": 2},)"
        R"( "backoff": {"initial_ms": 500, "max_ms": 60000, "multiplier": 1.5,)"
        R"( "jitter": "equal", "max_attempts": 7, "healthy_after_ms": 20000},)"
        R"( "timeouts": {"resolve_ms": 1, "connect_ms": 2, "tls_ms": 3, "handshake_ms": 4,)"
        R"( "resume_ms": 5, "close_ms": 6},)"
        R"( "endpoint_pool": {"failure_threshold": 5, "cooldown_ms": 1000,)"
        R"( "max_cooldown_ms": 2000, "return_to_primary_after_ms": 0},)"
        R"( "outbox": {"size_bytes": 100000, "overflow": "reject_newest",)"
        R"( "max_message_size": 9000}})");
    tether::port::PosixLinkSettings settings;
    settings.tls.session_resumption = false;
    tether::daemon::to_link_settings(c, &settings);
    const tether::ClientConfig& client = settings.link.client;
    const tether::port::TlsSettings& tls = settings.tls;
    const tether::ReconnectConfig& r = client.reconnect;
    UNSIGNED_LONGS_EQUAL(3, client.url_count);
    CHECK(client.urls[0] == c.endpoints[0].c_str());
    CHECK(client.urls[2] == c.endpoints[2].c_str());
    CHECK(client.urls[3] == nullptr);
    CHECK_TRUE(r.resume_protocol);
    UNSIGNED_LONGS_EQUAL(100000, settings.link.outbox_bytes);
    UNSIGNED_LONGS_EQUAL(500, r.backoff.initial_delay_ms);
    UNSIGNED_LONGS_EQUAL(60000, r.backoff.max_delay_ms);
    UNSIGNED_LONGS_EQUAL(1500, r.backoff.multiplier_permille);
    CHECK(r.backoff.jitter == tether::JitterMode::kEqual);
    UNSIGNED_LONGS_EQUAL(7, r.backoff.max_attempts);
    UNSIGNED_LONGS_EQUAL(20000, r.backoff.healthy_after_ms);
    UNSIGNED_LONGS_EQUAL(15000, r.heartbeat.interval_ms);
    UNSIGNED_LONGS_EQUAL(4000, r.heartbeat.pong_timeout_ms);
    UNSIGNED_LONGS_EQUAL(2, r.heartbeat.max_missed_pongs);
    UNSIGNED_LONGS_EQUAL(5, r.pool.failure_threshold);
    UNSIGNED_LONGS_EQUAL(1000, r.pool.cooldown_ms);
    UNSIGNED_LONGS_EQUAL(2000, r.pool.max_cooldown_ms);
    UNSIGNED_LONGS_EQUAL(0, r.pool.return_to_primary_after_ms);
    UNSIGNED_LONGS_EQUAL(1, r.resolve_timeout_ms);
    UNSIGNED_LONGS_EQUAL(2, r.connect_timeout_ms);
    UNSIGNED_LONGS_EQUAL(3, r.tls_timeout_ms);
    UNSIGNED_LONGS_EQUAL(4, r.handshake_timeout_ms);
    UNSIGNED_LONGS_EQUAL(5, r.resume_timeout_ms);
    UNSIGNED_LONGS_EQUAL(6, r.close_timeout_ms);
    UNSIGNED_LONGS_EQUAL(9000, client.ws.max_message_size);
    CHECK(client.overflow == tether::OverflowPolicy::kRejectNewest);
    STRCMP_EQUAL("gw", settings.device_id);
    UNSIGNED_LONGS_EQUAL(8, client.ack_every);
    UNSIGNED_LONGS_EQUAL(50, client.ack_interval_ms);
    UNSIGNED_LONGS_EQUAL(99, client.seq_reservation);
    STRCMP_EQUAL("/ca", tls.ca_file);
    STRCMP_EQUAL("/c", tls.client_cert_file);
    STRCMP_EQUAL("/k", tls.client_key_file);
    CHECK_TRUE(tls.has_pin);
    UNSIGNED_LONGS_EQUAL(0x00, tls.pin_sha256[0]);
    UNSIGNED_LONGS_EQUAL(0x1F, tls.pin_sha256[31]);
    CHECK_FALSE(tls.insecure);
    CHECK_TRUE(tls.session_resumption);
}

TEST(TetherdConfig, DefaultClientConfigLeavesUnsetThingsNull) {
    DaemonConfig c = parse_ok(kMinimal);
    tether::port::PosixLinkSettings settings;
    settings.link.client.urls[5] = "stale";
    settings.tls.ca_file = "stale";
    std::string error;
    CHECK_TRUE(tether::daemon::apply_override(&c, "insecure", nullptr, &error));
    tether::daemon::to_link_settings(c, &settings);
    const tether::ClientConfig& client = settings.link.client;
    const tether::port::TlsSettings& tls = settings.tls;
    UNSIGNED_LONGS_EQUAL(1, client.url_count);
    CHECK(client.urls[5] == nullptr);
    CHECK(settings.device_id == nullptr);
    CHECK(settings.token_file == nullptr);
    CHECK(settings.token_command == nullptr);
    CHECK_FALSE(settings.link.spool);
    CHECK(tls.ca_file == nullptr);
    CHECK(tls.client_cert_file == nullptr);
    CHECK(tls.client_key_file == nullptr);
    CHECK_FALSE(tls.has_pin);
    CHECK_TRUE(tls.insecure);
    // The example's settings are valid for the library too.
    DaemonConfig example;
    CHECK_TRUE(tether::daemon::load_config_file(example_path().c_str(), &example, &error));
    tether::daemon::to_link_settings(example, &settings);
    UNSIGNED_LONGS_EQUAL(example.endpoints.size(), settings.link.client.url_count);
}

TEST(TetherdConfig, EnumNamesRoundTrip) {
    const tether::daemon::LogLevel levels[] = {
        tether::daemon::LogLevel::kDebug, tether::daemon::LogLevel::kInfo,
        tether::daemon::LogLevel::kWarn, tether::daemon::LogLevel::kError};
    for (tether::daemon::LogLevel level : levels) {
        tether::daemon::LogLevel parsed = tether::daemon::LogLevel::kError;
        CHECK_TRUE(tether::daemon::parse_log_level(tether::daemon::to_string(level), &parsed));
        CHECK(parsed == level);
    }
    tether::daemon::LogLevel untouched = tether::daemon::LogLevel::kWarn;
    CHECK_FALSE(tether::daemon::parse_log_level("INFO", &untouched));
    CHECK(untouched == tether::daemon::LogLevel::kWarn);
    STRCMP_EQUAL("unknown", tether::daemon::to_string(static_cast<tether::daemon::LogLevel>(9)));
    STRCMP_EQUAL("command", tether::daemon::to_string(tether::daemon::DownlinkMode::kCommand));
    STRCMP_EQUAL("unknown",
                 tether::daemon::to_string(static_cast<tether::daemon::DownlinkMode>(9)));
}

TEST(TetherdConfig, DeviceStateNeedsExactlyOneWayToApply) {
    STRCMP_EQUAL(
        "state.desired_file: state.enabled needs state.desired_file or "
        "state.desired_command",
        parse_error(with_path("state.enabled", "true")).c_str());
    STRCMP_EQUAL("state.desired_file: only used when state.enabled is true",
                 parse_error(with_path("state.desired_file", R"("/run/desired.json")")).c_str());
    STRCMP_EQUAL(
        "state.report_command: only used when state.enabled is true",
        parse_error(with_member(R"("state": {"report_command": "report-state"})")).c_str());
    STRCMP_EQUAL("state.desired_file: give state.desired_file or state.desired_command, not both",
                 parse_error(with_member(R"("state": {"enabled": true, "desired_file": "/x",)"
                                         R"( "desired_command": "apply"})"))
                     .c_str());
    const DaemonConfig c = parse_ok(with_member(
        R"("state": {"enabled": true, "desired_command": "apply", "report_interval_ms": 0})"));
    CHECK(c.state.enabled);
    STRCMP_EQUAL("apply", c.state.desired_command.c_str());
    CHECK_EQUAL(0u, c.state.report_interval_ms);
    tether::port::PosixLinkSettings settings;
    tether::daemon::to_link_settings(c, &settings);
    CHECK(settings.link.device_state.enabled);
}

TEST(TetherdConfig, WebSocketModeFillsThePlainClientSettings) {
    const DaemonConfig plain = parse_ok(with_member(
        R"("protocol": "websocket", "plain": {"delivery": "at-most-once",
            "subprotocol": "telemetry.v2", "message_type": "binary"})"));
    tether::port::PosixLinkSettings settings;
    tether::daemon::to_link_settings(plain, &settings);
    const tether::ClientConfig& client = settings.link.client;
    CHECK_FALSE(client.reconnect.resume_protocol);
    CHECK(client.delivery == tether::Delivery::kAtMostOnce);
    CHECK(client.message_type == tether::net::WsOpcode::kBinary);
    LONGS_EQUAL(1, client.subprotocol_count);
    STRCMP_EQUAL("telemetry.v2", client.subprotocols[0]);
    CHECK_FALSE(client.require_subprotocol);
    STRCMP_CONTAINS(
        " protocol=websocket delivery=at-most-once message_type=binary "
        "subprotocol=telemetry.v2",
        tether::daemon::describe(plain).c_str());

    const DaemonConfig defaults = parse_ok(with_member(R"("protocol": "websocket")"));
    tether::daemon::to_link_settings(defaults, &settings);
    CHECK(settings.link.client.delivery == tether::Delivery::kAtLeastOnce);
    CHECK(settings.link.client.message_type == tether::net::WsOpcode::kText);
    LONGS_EQUAL(0, settings.link.client.subprotocol_count);

    tether::daemon::to_link_settings(parse_ok(kMinimal), &settings);
    CHECK_TRUE(settings.link.client.reconnect.resume_protocol);
}

TEST(TetherdConfig, CombinationsOnlyTetherV1GivesAMeaningAreRefusedByName) {
    STRCMP_EQUAL("plain.delivery: only used with \"protocol\": \"websocket\"",
                 parse_error(with_member(R"("plain": {"delivery": "at-most-once"})")).c_str());
    STRCMP_EQUAL(
        "state.enabled: the device-state extension is part of tether.v1: not available "
        "with \"protocol\": \"websocket\"",
        parse_error(with_member(R"("protocol": "websocket", "state": {"enabled": true,
                     "desired_file": "/tmp/d.json"})"))
            .c_str());
    STRCMP_EQUAL(
        "session.device_id: only used with \"protocol\": \"tether.v1\" (a plain "
        "WebSocket link has no session)",
        parse_error(with_member(R"("protocol": "websocket", "session": {"device_id": "gw"})"))
            .c_str());
    STRCMP_EQUAL(
        "timeouts.resume_ms: only used with \"protocol\": \"tether.v1\"",
        parse_error(with_member(R"("protocol": "websocket", "timeouts": {"resume_ms": 5})"))
            .c_str());
    STRCMP_CONTAINS("plain.subprotocol: expected an HTTP token",
                    parse_error(with_member(R"("protocol": "websocket",
                        "plain": {"subprotocol": "a,b"})"))
                        .c_str());
    STRCMP_EQUAL("protocol: expected one of tether.v1, websocket, got \"mqtt\"",
                 parse_error(with_member(R"("protocol": "mqtt")")).c_str());
}

TEST(TetherdConfig, CompressionIsOffByDefaultAndMapsOntoTheOffer) {
    const DaemonConfig defaults = parse_ok(with_member(R"("log": {"level": "info"})"));
    CHECK_FALSE(defaults.compression.enabled);
    const DaemonConfig c = parse_ok(with_member(
        R"("compression": {"mode": "on", "threshold_bytes": 10, "client_no_context_takeover": true,
            "server_no_context_takeover": true, "client_max_window_bits": 9,
            "server_max_window_bits": 10})"));
    CHECK_TRUE(c.compression.enabled);
    tether::port::PosixLinkSettings settings;
    tether::daemon::to_link_settings(c, &settings);
    const tether::ClientConfig& client = settings.link.client;
    UNSIGNED_LONGS_EQUAL(10, client.deflate_threshold);
    CHECK_TRUE(client.deflate_offer.client_no_context_takeover);
    CHECK_TRUE(client.deflate_offer.server_no_context_takeover);
    UNSIGNED_LONGS_EQUAL(9, client.deflate_offer.client_max_window_bits);
    UNSIGNED_LONGS_EQUAL(10, client.deflate_offer.server_max_window_bits);
    CHECK(client.deflater == nullptr);  // tetherd's main supplies it
}

TEST(TetherdConfig, CompressionWindowOfEightIsRefused) {
    CHECK(parse_error(with_member(R"("compression": {"client_max_window_bits": 8})"))
              .find("compression.client_max_window_bits") != std::string::npos);
    CHECK(parse_error(with_member(R"("compression": {"mode": "fast"})")).find("compression.mode") !=
          std::string::npos);
}

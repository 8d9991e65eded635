// SPDX-License-Identifier: MIT
// The daemon's status for people and scripts: one JSON object in the run
// directory (/run/tether/status.json), replaced atomically whenever it
// changes, and the one-line description of a state change for the log.
//
// The file (every key always present, in this order):
//   {"state":"waiting_to_retry","since_ms":1732500000000,
//    "endpoint":"wss://t.example.net/v1","attempt":4,"retry_in_ms":8200,
//    "reason":"tcp_refused","detail":"connect=refused",
//    "session":"0a6c...","version":3,"queued":12,"acked":1200,"dropped":0,
//    "rtt_ms":23,"offline_ms_total":61000,"spool":"off","storage_error":null,
//    "refused":0,"memory_only":0,"input_oversize":0,"credentials_error":null,
//    "metrics_error":null,"status_errors":0,
//    "device_state":{"negotiated":true,"desired_applied":7,"desired_received":7,
//                    "reported_version":3,"report_pending":false,"in_sync":true,
//                    "apply_failing":false,"apply_failures":0,"reports_refused":0},
//    "control":{"refused":0,"flush_timeouts":0},
//    "spool_records":12,"spool_bytes":4096,"spool_capacity_bytes":1048576,
//    "downlink":{"delivered":40,"dead_lettered":0,"failures":0,"confirmed":40},
//    "protocol":"tether.v1","delivery":"acknowledged","uplink_in_doubt":0,
//    "uplink_confirmed":0,"downlink_lost":0,
//    "compression":{"negotiated":true,"bytes_before":52001,"bytes_after":1003}}
// compression: whether the current connection negotiated permessage-deflate
// (compression.mode), and the payload bytes of the messages sent compressed,
// before and after compression, since start.
// state is to_string(LinkState); since_ms is the wall-clock time (Unix
// milliseconds) the state was entered; retry_in_ms is 0 outside
// waiting_to_retry; session is null without tether.v1 and rtt_ms is null
// before the first pong; device_state is null unless state.enabled.
// input_oversize counts datagrams and lines dropped at intake for being
// larger than outbox.max_message_size (the first is logged with its size);
// credentials_error is why the token file gives no token ("missing (No such
// file or directory)"), metrics_error why the metrics file cannot be written
// ("cannot write PATH: ..."), each null when fine; status_errors counts
// failed writes of this file itself (a write that succeeds again shows them).
// control is null when the control socket is not listening. protocol is
// "tether.v1" or "websocket"; delivery is "acknowledged" (tether.v1), or
// "at-most-once" or "at-least-once" (websocket); uplink_in_doubt counts messages
// handed to the kernel on links that died before a pong confirmed them
// (websocket: possibly lost, or sent again), uplink_confirmed those a pong
// confirmed.
// downlink_lost (websocket) counts server messages the output refused: with
// no seqs the server cannot send them again.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "tether/client.h"
#include "tether/reconnect.h"
#include "tether/status.h"

namespace tether::daemon {

/// The device-state extension as status and metrics show it.
struct DeviceStateStatus {
    bool enabled = false;
    bool negotiated = false;             ///< the current connection uses it
    std::uint64_t desired_applied = 0;   ///< the version applied and confirmed
    std::uint64_t desired_received = 0;  ///< the newest version received
    std::uint64_t reported_version = 0;  ///< the server's version of the reported document
    bool report_pending = false;         ///< a report waits to be sent or answered
    bool in_sync = false;                ///< applied == received and nothing pending
    bool apply_failing = false;          ///< the latest apply failed; retrying
    std::uint64_t apply_failures = 0;
    std::uint64_t reports_accepted = 0;
    std::uint64_t reports_refused = 0;
    std::uint64_t report_failures = 0;  ///< report commands that failed or printed no object
    std::uint64_t desired_snapshots = 0;
    std::uint64_t desired_increments = 0;
};

/// The control socket (tetherctl) as the status shows it.
struct ControlStatus {
    // Not the number of requests: the file would be rewritten for every
    // tetherctl status. Only what went wrong, which is rare.
    bool enabled = false;       ///< the socket is listening
    std::uint64_t refused = 0;  ///< bad, too long, busy, timed out or failed
    std::uint64_t flush_timeouts = 0;
};

struct StatusSnapshot {
    LinkState state = LinkState::kIdle;
    std::uint64_t since_ms = 0;  ///< Unix time in ms when `state` was entered
    std::string endpoint;        ///< URL of the current (or last) endpoint
    std::uint32_t attempt = 0;   ///< consecutive attempts so far
    std::uint32_t retry_in_ms = 0;
    std::string reason;         ///< the failure policy's reason for the last failure, or ""
    std::string detail;         ///< more about it ("status=503"), or ""
    std::string session;        ///< tether.v1 session UUID, or "" (written as null)
    std::uint32_t version = 0;  ///< tether.v1 session version
    std::uint64_t queued = 0;   ///< messages waiting in the outbox
    std::uint64_t acked = 0;    ///< highest uplink seq the server acknowledged
    std::uint64_t dropped = 0;  ///< messages dropped by the outbox's overflow policy
    bool has_rtt = false;
    std::uint32_t rtt_ms = 0;  ///< last heartbeat round trip, when has_rtt
    std::uint64_t offline_ms_total = 0;
    std::string spool = "off";  ///< "off", "ok" or "degraded" (disk failing: memory only)
    std::string storage_error;  ///< why the spool or state record fails, or "" (written as null)
    std::uint64_t refused = 0;  ///< messages refused as larger than the link can deliver
    std::uint64_t memory_only = 0;     ///< messages accepted while the spool was degraded
    std::uint64_t input_oversize = 0;  ///< datagrams and lines dropped as too large to read
    std::string credentials_error;     ///< why the token file gives no token, or "" (null)
    std::string metrics_error;         ///< why the metrics file cannot be written, or "" (null)
    std::uint64_t status_errors = 0;   ///< failed writes of the status file
    DeviceStateStatus device_state;    ///< written as null when not enabled
    ControlStatus control;             ///< written as null when not listening
    std::uint64_t spool_records = 0;   ///< messages in the spool not yet acknowledged
    std::uint64_t spool_bytes = 0;     ///< journal bytes of the active region in use
    std::uint64_t spool_capacity_bytes = 0;  ///< bytes of one region (0: no spool)
    std::uint64_t downlink_delivered = 0;    ///< handed to the application
    std::uint64_t downlink_dead_lettered = 0;
    std::uint64_t downlink_failures = 0;         ///< failed command attempts and line writes
    std::uint64_t downlink_confirmed = 0;        ///< highest downlink seq confirmed to the server
    std::string protocol = "tether.v1";          ///< "tether.v1" or "websocket"
    std::string delivery = "acknowledged";       ///< or "at-most-once", "at-least-once"
    std::uint64_t in_doubt = 0;                  ///< websocket: handed over, link died unconfirmed
    std::uint64_t confirmed = 0;                 ///< websocket: messages a pong confirmed
    std::uint64_t downlink_lost = 0;             ///< websocket: server messages the output refused
    bool compression_negotiated = false;         ///< permessage-deflate on this connection
    std::uint64_t compression_bytes_before = 0;  ///< payload of messages sent compressed
    std::uint64_t compression_bytes_after = 0;   ///< what they compressed to
};

/// The JSON text of `snapshot` (one line, with a trailing newline); strings
/// are escaped per RFC 8259.
std::string status_json(const StatusSnapshot& snapshot);

/// The status file at one path.
class StatusFile {
  public:
    explicit StatusFile(std::string path) : path_(std::move(path)) {}

    /// Writes `snapshot` when its text differs from the last one written.
    /// kOk (also when unchanged: nothing is written); kIoError when the file
    /// could not be replaced (counted in errors(); the next update retries).
    Status update(const StatusSnapshot& snapshot);

    const std::string& path() const { return path_; }
    std::uint64_t writes() const { return writes_; }
    std::uint64_t errors() const { return errors_; }

  private:
    std::string path_;
    std::string last_written_;
    std::uint64_t writes_ = 0;
    std::uint64_t errors_ = 0;
};

/// The log line for a state change, for example:
///   "online"
///   "reconnecting in 8.2 s (attempt 4): tcp_refused (connect=refused)"
///   "offline: gave up (last failure: tcp_refused)"
///   "superseded: another instance of this device took over the session"
///   "connecting: resolving", "connecting: tls handshake", "closing", "stopped"
/// The delay is rounded to tenths of a second; ": reason" and " (detail)"
/// appear only when the event has them.
std::string describe_state(const ClientEvent& event);

}  // namespace tether::daemon

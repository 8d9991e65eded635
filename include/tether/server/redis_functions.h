// SPDX-License-Identifier: MIT
// The Redis function library `tether` (Lua), loaded by the Redis engine with
// FUNCTION LOAD REPLACE on every (re)connect before any other command. Its
// functions are the only writers of a session's keys (docs/PROTOCOL.md,
// "tether-server's Redis store"). Each takes one key, `P:{S}:state`, and names
// the session's other keys (`P:{S}:up`, `P:{S}:gaps`, `P:{S}:down`,
// `P:{S}:desired`) and the channels (`P:supersede`, `P:downlink`,
// `P:desired`) from it, so one call touches one
// hash slot. Times are arguments: a function never reads Redis's clock.
//
// Every accepted hello takes the session's next `epoch` (in the state it
// returns); every write carries it, and a write whose epoch is no longer the
// session's changes nothing and answers "superseded" with the current version:
// that is how a connection that lost its session, to a newer version or to
// the same version reconnecting elsewhere, is kept from writing.
//
// Replies (RESP2; "state" is the session's state hash as HGETALL returns it):
//
//   tether_hello version device last_downlink oldest_uplink user instance
//     -> {"accepted"|"superseded"|"forbidden", resumed, last_uplink,
//         recorded_hole, has_downlink_gap, gap_first, gap_last, replay_after,
//         state}
//   tether_uplink epoch maxlen [seq received_ms captured_ms payload]...
//     (captured_ms "" when the device sent no age)
//     -> {"ok", last_uplink, stored, duplicates, gaps, missing, state}
//      | {"superseded", version}
//   tether_gap epoch first last reason
//     -> {"recorded"|"recorded_after_unreported_gap"|"ignored", last_uplink,
//         gaps, missing, state} | {"superseded", version}
//   tether_ack_downlink epoch seq
//     -> {"ok", downlink_acked, state} | {"invalid", downlink_last}
//      | {"superseded", version}
//   tether_push payload now_ms [capacity]
//     -> the assigned seq (integer)
//   tether_desired_put base document patch history
//     (no epoch: a backend's write) sets desired_version base + 1 and
//     desired `document`, appends `patch` to P:{S}:desired as entry
//     <base + 1>-0 (MAXLEN history, exact) and publishes "S version" on
//     P:desired, when desired_version is `base`
//     -> {"ok", version} | {"conflict", desired_version}
//   tether_desired_applied epoch version
//     -> {"ok", desired_applied} | {"invalid", desired_version}
//      | {"superseded", version}
//   tether_report epoch base id document
//     (id: 16 lowercase hex digits) sets reported_version base + 1,
//     reported `document` and report_id `id`, when reported_version is `base`
//     and `id` is not report_id
//     -> {"ok", reported_version} | {"repeated", reported_version}
//      | {"stale", reported_version, reported} | {"superseded", version}
//
// The state functions store the JSON texts they are given and never parse
// them: the engine merges in C++ (Lua's cjson turns [] into {} and rounds
// numbers above 2^53), reads first and writes with the version it read.
//
// An unknown session (no state hash) is the error "NOTFOUND tether: unknown
// session"; a malformed call is an "ERR tether: ..." error.
#pragma once

#include <string_view>

namespace tether::server {

/// The library's source text, for FUNCTION LOAD REPLACE.
std::string_view redis_function_library();

inline constexpr std::string_view kRedisLibraryName = "tether";
/// Replay capacity tether_push applies when its caller passes none.
inline constexpr unsigned kRedisDefaultReplayCapacity = 1024;

}  // namespace tether::server

// SPDX-License-Identifier: MIT
// The device-state messages of tether.v1 (docs/PROTOCOL.md section 9):
// desired, applied, report, report_ok, report_refused.
//
// They are control messages (JSON text frames), used only on a connection
// whose welcome named "state" (kFeatureState). Unlike the other control
// messages they carry a document of up to kMaxStateDocument bytes, so they
// have their own size bound and their own parser, which hands the document
// back in compact form in a caller buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tether/net/json_document.h"
#include "tether/net/tether_v1.h"

namespace tether::net::v1 {

/// Largest state message: its document plus the fields around it.
inline constexpr std::size_t kMaxStateMessage = kMaxStateDocument + 256;
/// A report id: 16 lowercase hex digits.
inline constexpr std::size_t kReportIdLength = 16;

enum class StateType : std::uint8_t {
    kDesired,        ///< S->C: a desired increment (patch) or snapshot (state)
    kApplied,        ///< C->S: the device applied desired up to `version`
    kReport,         ///< C->S: a reported patch or whole state, based on `base`
    kReportOk,       ///< S->C: the report with `id` made reported `version`
    kReportRefused,  ///< S->C: the report with `id` was refused for `reason`
};

/// Reasons of report_refused (section 9.3).
inline constexpr const char* kRefusedStale = "stale";
inline constexpr const char* kRefusedTooLarge = "too_large";
inline constexpr const char* kRefusedInvalid = "invalid";
inline constexpr const char* kRefusedUnavailable = "unavailable";

struct StateMessage {
    StateType type = StateType::kDesired;
    /// desired: its version (>= 1); applied: the version applied (>= 1);
    /// report_ok: the reported version after the report (>= 1);
    /// report_refused: the current reported version (0: none yet).
    std::uint64_t version = 0;
    /// report: the reported version it is based on (0: none).
    std::uint64_t base = 0;
    /// desired: true for a snapshot ("state"), false for an increment
    /// ("patch"). report: true when it replaces the document ("state"), false
    /// for a merge patch. report_refused: true when it carries the current
    /// document ("state").
    bool whole = false;
    char id[kReportIdLength + 1] = {};       ///< report, report_ok, report_refused
    char reason[kMaxReasonLength + 1] = {};  ///< report_refused
    std::size_t document_size = 0;           ///< bytes of the document in the caller's buffer
};

/// True when `text` is a report id: exactly kReportIdLength lowercase hex digits.
bool is_report_id(const char* text, std::size_t length);

/// Parses one state message. The message's document ("state" or "patch"),
/// when it has one, is validated as compact_object does and written compact
/// into `document` (capacity bytes; kMaxStateDocument is always enough for a
/// valid one). kUnknownType when "type" is not a state message type (the
/// caller then tries parse_control), kNotJson (not one JSON object, or larger
/// than kMaxStateMessage), kMissingField, kBadField (a field of the wrong type
/// or range, both or neither of "state" and "patch", "snapshot" disagreeing
/// with which one is present, a document that is not a valid object or is
/// larger than kMaxStateDocument), kBufferTooSmall (`capacity` too small).
V1Status parse_state_message(const std::uint8_t* json, std::size_t size, StateMessage* out,
                             char* document, std::size_t capacity);

/// Writers: compact JSON into `out` (not NUL-terminated). The document
/// arguments must be compact objects as compact_object writes them (the
/// writers copy them verbatim); kInvalidArgument when a field is out of
/// range (a version 0 where one is required, an id that is not a report id,
/// a reason that is not plain text of at most kMaxReasonLength bytes, a
/// document larger than kMaxStateDocument or not starting with '{'),
/// kBufferTooSmall when the message does not fit.
V1Status write_desired(std::uint64_t version, bool snapshot, const char* document,
                       std::size_t document_size, char* out, std::size_t capacity,
                       std::size_t* length);
V1Status write_applied(std::uint64_t version, char* out, std::size_t capacity, std::size_t* length);
V1Status write_report(const char* id, std::uint64_t base, bool whole, const char* document,
                      std::size_t document_size, char* out, std::size_t capacity,
                      std::size_t* length);
V1Status write_report_ok(const char* id, std::uint64_t version, char* out, std::size_t capacity,
                         std::size_t* length);
/// `document` may be null (size 0) for reasons other than kRefusedStale.
V1Status write_report_refused(const char* id, const char* reason, std::uint64_t version,
                              const char* document, std::size_t document_size, char* out,
                              std::size_t capacity, std::size_t* length);

}  // namespace tether::net::v1

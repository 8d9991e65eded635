// SPDX-License-Identifier: MIT
// The tether.v1 messages (docs/PROTOCOL.md): binary DATA and ACK with a fixed
// 10-byte header (14 for a DATA that carries its age, section 3.6), and JSON
// control messages (hello, welcome, gap, error).
//
// The binary codec is a few byte moves: the hot path never touches JSON.
// Control messages are parsed with cJSON (which allocates inside libcjson;
// they are a handful per connection, never per data message) and written
// with bounded formatting into caller buffers. Every parser rejects what it
// does not understand with a status naming why.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::net::v1 {

inline constexpr const char* kSubprotocol = "tether.v1";
inline constexpr std::size_t kHeaderSize = 10;
/// A DATA header with the age flag: kHeaderSize plus the 4-byte age.
inline constexpr std::size_t kAgedDataHeaderSize = 14;
/// DATA flags bit: a 4-byte age (milliseconds, big-endian) follows the seq.
inline constexpr std::uint8_t kFlagAge = 0x01;
/// The largest age a sender puts on the wire: ages are measured on a 32-bit
/// millisecond clock that wraps, so anything longer (24.8 days) is capped
/// here and means "at least this long".
inline constexpr std::uint32_t kMaxAgeMs = 0x7FFFFFFFu;

/// Optional extensions named in hello's and welcome's "features" array, as
/// bits. A client lists what it can send; a server answers with the subset it
/// accepts; only that subset is used on the connection.
inline constexpr std::uint32_t kFeatureAge = 0x01;  ///< "age": uplink DATA may carry its age
/// "state": desired and reported documents (section 9, net/state_messages.h)
inline constexpr std::uint32_t kFeatureState = 0x02;
/// Seqs in JSON must stay below 2^53 (exact in every JSON parser).
inline constexpr std::uint64_t kMaxJsonSeq = (std::uint64_t{1} << 53) - 1;
inline constexpr std::size_t kMaxDeviceLength = 128;
inline constexpr std::size_t kSessionTextLength = 36;
inline constexpr std::size_t kMaxReasonLength = 64;
inline constexpr std::size_t kMaxErrorMessageLength = 120;
/// Largest control message accepted (a hello with the longest device id is far below).
inline constexpr std::size_t kMaxControlSize = 1024;

/// Close codes of docs/PROTOCOL.md section 6 that tether.v1 adds.
inline constexpr std::uint16_t kCloseAuthFailed = 4001;
inline constexpr std::uint16_t kCloseViolation = 4002;
/// The token may not use this session (another user owns it) or this device.
inline constexpr std::uint16_t kCloseForbidden = 4003;
inline constexpr std::uint16_t kCloseSuperseded = 4009;

enum class [[nodiscard]] V1Status{
    kOk,
    kBufferTooSmall,   ///< the output does not fit
    kTooShort,         ///< a binary message shorter than its header, or an ACK not exactly 10 bytes
    kUnknownKind,      ///< a binary message whose first byte is neither 'D' nor 'A'
    kBadFlags,         ///< reserved flag bits set
    kNotJson,          ///< a control message that is not one JSON object (or is too large)
    kUnknownType,      ///< "type" missing, not a string, or not one we know
    kMissingField,     ///< a required field is absent
    kBadField,         ///< a field has the wrong JSON type or is out of range
    kInvalidArgument,  ///< a caller argument breaks the contract (writers)
};

const char* to_string(V1Status status);

// --- Binary ----------------------------------------------------------------

enum class Kind : std::uint8_t { kData = 0x44, kAck = 0x41 };

struct BinaryMessage {
    Kind kind;
    std::uint64_t seq;
    const std::uint8_t* payload;  ///< DATA: points into the input; ACK: null
    std::size_t payload_size;
    bool has_age;          ///< DATA with kFlagAge (only when decoded with kFeatureAge)
    std::uint32_t age_ms;  ///< valid when has_age; 0 otherwise
};

/// Writes a DATA header for `seq` (the payload follows it on the wire).
void write_data_header(std::uint64_t seq, std::uint8_t out[kHeaderSize]);
/// Writes a DATA header with kFlagAge for `seq` and `age_ms` (capped at
/// kMaxAgeMs); the payload follows it. Only on a connection whose welcome
/// named "age" (kFeatureAge).
void write_aged_data_header(std::uint64_t seq, std::uint32_t age_ms,
                            std::uint8_t out[kAgedDataHeaderSize]);
/// Writes a complete ACK for `seq`.
void write_ack(std::uint64_t seq, std::uint8_t out[kHeaderSize]);
/// Decodes a binary message. `features` is what the connection negotiated
/// for this direction: with kFeatureAge (uplink, as the server sees it) a DATA
/// may carry kFlagAge and its age; without it (always for downlink) the flag
/// is reserved like every other. Returns kOk, kTooShort (below 10 bytes, an
/// ACK not exactly 10, a DATA with kFlagAge below 14), kUnknownKind, or
/// kBadFlags (a reserved bit set, or any flag on an ACK).
V1Status decode_binary(const std::uint8_t* data, std::size_t size, BinaryMessage* out,
                       std::uint32_t features = 0);

// --- Control -----------------------------------------------------------------

struct Hello {
    char session[kSessionTextLength + 1] = {};
    std::uint32_t version = 0;  ///< >= 1
    char device[kMaxDeviceLength + 1] = {};
    std::uint64_t last_downlink = 0;
    std::uint64_t oldest_uplink = 0;
    std::uint64_t next_uplink = 0;
    /// Optional: the extensions the client can use (kFeature* bits); written
    /// as "features" only when non-zero.
    std::uint32_t features = 0;
    /// Optional (section 9.1): the desired version the client has applied;
    /// written only with kFeatureState, read as 0 when absent.
    std::uint64_t desired_version = 0;
};

struct Welcome {
    char session[kSessionTextLength + 1] = {};
    bool resumed = false;
    std::uint64_t last_uplink = 0;
    std::uint32_t ack_every = 64;
    std::uint32_t ack_interval_ms = 200;
    /// Optional: the extensions of the hello's list that the server accepts
    /// (kFeature* bits); written as "features" only when non-zero.
    std::uint32_t features = 0;
};

struct Gap {
    std::uint64_t first = 0;                 ///< >= 1
    std::uint64_t last = 0;                  ///< >= first
    char reason[kMaxReasonLength + 1] = {};  ///< may be empty
};

struct Error {
    std::uint16_t code = 0;
    char message[kMaxErrorMessageLength + 1] = {};
};

enum class ControlType : std::uint8_t { kHello, kWelcome, kGap, kError };

struct Control {
    ControlType type;
    Hello hello;
    Welcome welcome;
    Gap gap;
    Error error;
};

/// Parses one control message (UTF-8 JSON text, not NUL-terminated). Checks
/// every field of its type: presence, JSON type and range (seqs 0..kMaxJsonSeq,
/// session a canonical UUID, version >= 1, device 1..128 bytes, gap first >= 1
/// and last >= first, error code 1000..4999). Strings too long for their
/// field are kBadField, never truncated. Unknown extra fields are ignored.
/// hello and welcome may carry "features": an array of strings (anything else
/// is kBadField); names it knows set kFeature* bits, unknown names are ignored
/// (a later extension), and an absent field means none.
V1Status parse_control(const std::uint8_t* json, std::size_t size, Control* out);

/// Writers: compact JSON into `out` (not NUL-terminated), *length set.
/// kInvalidArgument when a field is out of its range (see parse_control), a
/// string needs escaping beyond what is allowed (device ids and reasons are
/// printable ASCII without '"' and '\\'; features only known kFeature* bits),
/// kBufferTooSmall when it does not fit.
V1Status write_hello(const Hello& hello, char* out, std::size_t capacity, std::size_t* length);
V1Status write_welcome(const Welcome& welcome, char* out, std::size_t capacity,
                       std::size_t* length);
V1Status write_gap(const Gap& gap, char* out, std::size_t capacity, std::size_t* length);
V1Status write_error(const Error& error, char* out, std::size_t capacity, std::size_t* length);

/// Reads "retry_after=N" (N whole seconds, at most 86400) from a close reason.
/// It must be a whole token: tokens are separated by spaces, tabs, commas or
/// semicolons, and N is one or more decimal digits ending the token
/// ("overloaded retry_after=30" gives 30; "retry_after=30s" and
/// "xretry_after=30" give nothing). The first such token wins. Returns false
/// (and leaves *seconds alone) when the reason has no such value.
bool parse_retry_after_reason(const std::uint8_t* reason, std::size_t size, std::uint32_t* seconds);

}  // namespace tether::net::v1

// SPDX-License-Identifier: MIT
// Hands each downlink message to the device, and says which messages the
// device has: the daemon acknowledges a downlink seq to the server only once
// confirmed_through() has reached it, so a failing handler or a crash never
// loses a message the server already forgot.
//
// Two ways to hand a message over:
//
// - Line mode: the message is written to a descriptor (standard output) as
//   one line. Handed over = the whole line written. A write that fails
//   (EPIPE, EIO, a non-blocking descriptor that stays full) keeps the
//   message; it is written again (from where it stopped) stall_retry_ms
//   later. A message containing '\n' cannot be one line: it goes to the
//   dead-letter directory. On a pipe the process must ignore SIGPIPE (tetherd
//   does) for a reader that went away to be EPIPE rather than fatal.
// - Command mode: a command runs per message through `/bin/sh -c`, with the
//   message and a newline on its standard input, one at a time in seq order.
//   Handed over = the command exited with status 0. A command that exits
//   otherwise, dies by a signal, cannot be started, or outlives
//   command_timeout_ms (its process group is then killed with SIGKILL and
//   reaped) is run again after a backoff, at most `retries` more times; then
//   the message is written to the dead-letter directory, and that counts as
//   handed over once the file and the directory entry are synced.
//
// Dead letters: one file per message, "<dir>/<seq as 20 digits>.msg"
// (00000000000000000042.msg) holding exactly the message bytes, mode 0600,
// written to "<name>.tmp", fsync'd, renamed, then the directory fsync'd. The
// directory is created (0700) when first needed. A message dead-lettered
// twice (replayed after a crash) replaces its file. If the write fails (disk
// full, read-only), the message is not handed over: it stays first in line
// and stall_retry_ms later its command runs once more and, failing that, the
// dead-letter write is tried again; nothing behind it is handed over
// meanwhile. Without a dead-letter directory such a message is only retried.
//
// Order: messages are handed over strictly in seq order, so
// confirmed_through() is the seq of the last one handed over. Seqs missing
// between two messages (a gap the server reported) are covered by the next
// one handed over.
//
// Events: the output never logs. It reports to an optional DownlinkObserver,
// synchronously from deliver() or tick(): each failed attempt, each
// dead-lettered message (exactly once), and failing writes (line writes and
// dead-letter writes) once per distinct errno until a write works again,
// which is reported too. Every occurrence is also counted in counters().
//
// Nothing waits for a command: the loop calls tick(now) every iteration,
// polls pending_fd() for writing when it is not -1, and sleeps no longer
// than a short interval while busy() (a command's exit is noticed by
// polling) and no longer than next_deadline().
//
//   char queue[16384];
//   DownlinkOutputConfig config;
//   config.command = "/usr/lib/tether/handle-downlink";
//   config.dead_letter_dir = "/var/lib/tether/dead-letter";
//   config.observer = &logger;               // logs each DownlinkEvent
//   DownlinkOutput output(config, queue, sizeof queue);
//   client:  downlink_can_accept(size)  ->  output.can_accept(size)
//            on_message + on_downlink_seq -> (void)output.deliver(seq, data, size);
//   every iteration:
//            output.tick(now);
//            client.confirm_downlink(output.confirmed_through());
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "shell_command.h"
#include "tether/backoff.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether::daemon {

enum class DownlinkEventKind : std::uint8_t {
    kAttemptFailed,     ///< a command attempt failed (see `failure`); more may follow
    kDeadLettered,      ///< the message was written to `path`; once per message
    kDeadLetterFailed,  ///< writing the dead letter failed with `error`; the message is kept
    kWriteFailed,       ///< line mode: writing the line failed with `error`; the message is kept
    kRecovered,         ///< a write kind that had failed (kDeadLetterFailed or kWriteFailed) worked
};

/// Why an attempt failed, or why a message was dead-lettered.
enum class DownlinkFailure : std::uint8_t {
    kNone,
    kExited,       ///< the command exited non-zero (`status`)
    kSignaled,     ///< the command died by a signal (`status`)
    kTimedOut,     ///< it outlived command_timeout_ms and was killed
    kSpawnFailed,  ///< /bin/sh could not be started (`error`)
    kLost,         ///< its exit status was taken by someone else (a SIGCHLD handler)
    kNotALine,     ///< line mode: the message contains '\n'
    kTooLarge,     ///< the message can never fit the queue
};

/// "attempt_failed", "dead_lettered", "dead_letter_failed", "write_failed", "recovered".
const char* to_string(DownlinkEventKind kind);
/// "none", "exited", "signaled", "timed_out", "spawn_failed", "lost", "not_a_line", "too_large".
const char* to_string(DownlinkFailure failure);

struct DownlinkEvent {
    DownlinkEventKind kind = DownlinkEventKind::kAttemptFailed;
    std::uint64_t seq = 0;                             ///< the message concerned
    std::uint32_t attempts = 0;                        ///< command attempts made for it so far
    DownlinkFailure failure = DownlinkFailure::kNone;  ///< the latest attempt's (or why dead)
    int status = -1;             ///< waitpid() status for kExited and kSignaled, else -1
    int error = 0;               ///< errno for kSpawnFailed, kDeadLetterFailed, kWriteFailed;
                                 ///< kRecovered: the errno of the last failure
    const char* path = nullptr;  ///< kDeadLettered: the file (valid during the call only)
};

/// Receives events. Called from inside deliver() and tick(): it must not call
/// back into the output.
class DownlinkObserver {
  public:
    virtual ~DownlinkObserver() = default;
    virtual void on_downlink_event(const DownlinkEvent& event) = 0;
};

struct DownlinkOutputConfig {
    /// Command mode when set (kept by pointer); nullptr: line mode on `fd`.
    const char* command = nullptr;
    /// Line mode: the descriptor (not closed by the output). A non-blocking
    /// one that stays full is waited for at most line_write_timeout_ms per
    /// write; then the write counts as failed (ETIMEDOUT).
    int fd = -1;
    int line_write_timeout_ms = 1000;
    /// Command mode: how long one command may run; >= 1.
    std::uint32_t command_timeout_ms = 10000;
    /// Command mode: attempts after the first before dead-lettering.
    std::uint32_t retries = 3;
    /// Delay before the first retry, doubling for each one after it, at most
    /// kMaxRetryDelayMs (or retry_delay_ms when that is larger). 0: none.
    std::uint32_t retry_delay_ms = 1000;
    /// Where dead letters go (kept by pointer); nullptr: nowhere.
    const char* dead_letter_dir = nullptr;
    /// How long a message whose write failed (or whose retries are spent and
    /// whose dead-letter write failed) waits before the next try; >= 1.
    std::uint32_t stall_retry_ms = 10000;
    DownlinkObserver* observer = nullptr;
};

/// Everything counted since construction.
struct DownlinkCounters {
    std::uint64_t delivered = 0;           ///< handed to the application: written, or exit 0
    std::uint64_t dead_lettered = 0;       ///< handed over to the dead-letter directory
    std::uint64_t failed = 0;              ///< failed command attempts (all causes below)
    std::uint64_t timeouts = 0;            ///< ... of which killed after command_timeout_ms
    std::uint64_t spawn_failures = 0;      ///< ... of which /bin/sh could not be started
    std::uint64_t retries = 0;             ///< command attempts after a message's first
    std::uint64_t dead_letter_errors = 0;  ///< failed dead-letter writes
    std::uint64_t write_errors = 0;        ///< failed line writes
    std::uint64_t rejected = 0;            ///< messages that cannot be a line or never fit
    std::uint64_t refused = 0;             ///< deliver() calls answered kNoSpace or kTooLarge
    std::uint64_t duplicates = 0;          ///< deliver() calls for a seq already taken
};

class DownlinkOutput {
  public:
    /// Messages not yet handed over wait in `queue` (caller-owned, kept by
    /// pointer); each takes its size + kEntryOverhead bytes. Size it to hold
    /// several of the largest messages.
    DownlinkOutput(const DownlinkOutputConfig& config, char* queue, std::size_t queue_capacity);

    /// Kills a command still running (and whatever it started) and reaps it.
    /// Messages not handed over are forgotten; none of them was confirmed.
    ~DownlinkOutput();
    DownlinkOutput(const DownlinkOutput&) = delete;
    DownlinkOutput& operator=(const DownlinkOutput&) = delete;

    /// Whether deliver() would take a message of `size` bytes now: it fits
    /// the queue's free space, or it can never fit and nothing is queued (it
    /// is then dead-lettered at once). While false, stop reading downlink;
    /// tick() makes room.
    bool can_accept(std::size_t size) const;

    /// Takes message `seq` (>= 1; seqs rise). The bytes are copied. Returns
    ///   kOk               taken: queued (line mode: also handed over at
    ///                     once when nothing waits before it), or
    ///                     dead-lettered at once (never fits), or `seq` was
    ///                     taken before (counted in duplicates, nothing done)
    ///   kNoSpace          not taken: the queue is full (can_accept() said so)
    ///   kTooLarge         not taken: it never fits and could not be
    ///                     dead-lettered now (messages wait, no directory, or
    ///                     the write failed)
    ///   kInvalidArgument  seq 0, or `data` null with a size
    /// After kNoSpace or kTooLarge every later seq is refused (kNoSpace) until
    /// this seq is offered again or skip() covers it, so nothing is handed
    /// over out of order and confirmed_through() stays below it.
    Status deliver(std::uint64_t seq, const char* data, std::size_t size);

    /// The server will never send seqs first..last (a downlink gap): a
    /// refused seq among them no longer holds later ones back.
    void skip(std::uint64_t first, std::uint64_t last);

    /// The highest seq S such that every message with seq <= S that this
    /// output took has been handed over (0 before the first). Never passes a
    /// message still queued or refused.
    std::uint64_t confirmed_through() const { return confirmed_; }

    /// Does the work: feeds the running command's input, reaps it, kills it
    /// at its deadline, retries, dead-letters, writes lines that wait, starts
    /// the next command. Never blocks, except for line writes (bounded by
    /// line_write_timeout_ms) and dead-letter fsyncs.
    void tick(TimeMs now);

    /// A command runs or messages wait to be handed over.
    bool busy() const { return command_.running() || queue_count_ > 0; }
    /// When tick() next has something timed to do (a command's deadline, a
    /// retry); false when nothing is timed.
    bool next_deadline(TimeMs* at) const;
    /// The running command's input while bytes remain to be written to it
    /// (watch it for writing), else -1.
    int pending_fd() const { return command_.pending_fd(); }
    /// Messages taken and not yet handed over.
    std::size_t queued() const { return queue_count_; }
    const DownlinkCounters& counters() const { return counters_; }
    /// The highest seq of a dead letter already in dead_letter_dir (0 when
    /// there is none, or no directory, or it cannot be read). A caller that
    /// numbers messages itself (plain WebSocket mode has no server seqs)
    /// starts above it, so a clock set back never reuses, and so overwrites,
    /// an earlier run's dead letter.
    std::uint64_t highest_dead_letter_seq() const;
    /// The last reaped command's waitpid() status, -1 before the first.
    int last_status() const { return last_status_; }

    /// Queue bytes per message on top of its size.
    static constexpr std::size_t kEntryOverhead = 12;
    static constexpr std::uint32_t kMaxRetryDelayMs = 60000;

  private:
    // Remembers which errnos were reported since the last success.
    class ErrorsSeen {
      public:
        bool first(int error);
        bool any() const { return count_ > 0; }
        int last() const { return last_; }
        void clear() { count_ = 0; }

      private:
        int seen_[8] = {};
        std::size_t count_ = 0;
        int last_ = 0;
    };

    std::size_t front_size() const;
    std::uint64_t front_seq() const;
    const char* front_data() const { return queue_ + kEntryOverhead; }
    void push(std::uint64_t seq, const char* data, std::size_t size);
    void hand_over();
    bool step(TimeMs now, bool have_now);
    bool step_line(TimeMs now, bool have_now);
    bool step_command(TimeMs now);
    bool after_failure(TimeMs now, DownlinkFailure failure, int error);
    bool dead_letter(std::uint64_t seq, const char* data, std::size_t size, DownlinkFailure why);
    bool write_line();
    void wait_for(std::uint32_t delay_ms, TimeMs now, bool have_now);
    bool ready(TimeMs now);
    void report(DownlinkEventKind kind, std::uint64_t seq, DownlinkFailure failure, int error,
                const char* path = nullptr);

    DownlinkOutputConfig config_;
    Backoff retry_backoff_;
    char* queue_ = nullptr;
    std::size_t queue_capacity_ = 0;
    // Entries are [size: 4 bytes][seq: 8 bytes][message], native order,
    // oldest (lowest seq) first. The front one stays until it is handed over.
    std::size_t queue_used_ = 0;
    std::size_t queue_count_ = 0;
    std::uint64_t last_seq_ = 0;     // highest seq taken
    std::uint64_t confirmed_ = 0;    // seq of the last message handed over
    std::uint64_t refused_seq_ = 0;  // lowest refused seq not taken since; 0: none
    // The front message's progress.
    std::uint32_t attempts_ = 0;
    bool waiting_ = false;     // nothing is tried before resume_at_
    bool wait_unset_ = false;  // ... which the next tick() sets to now + wait_ms_
    std::uint32_t wait_ms_ = 0;
    TimeMs resume_at_ = 0;
    // The front message's command; its standard output is the daemon's.
    ShellCommand command_{ShellCommand::kInheritOutput, 0};
    // Line mode: bytes of the front message (plus its newline) written so far.
    std::size_t written_ = 0;
    ErrorsSeen write_errors_seen_;
    ErrorsSeen dead_letter_errors_seen_;
    bool dead_letter_dir_synced_ = false;  // its entry in the parent directory
    DownlinkCounters counters_;
    int last_status_ = -1;
};

}  // namespace tether::daemon

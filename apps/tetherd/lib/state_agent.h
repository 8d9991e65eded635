// SPDX-License-Identifier: MIT
// tetherd's side of the device-state extension (docs/PROTOCOL.md section 9,
// docs/CONFIG.md "Device state"): applies each desired change the link hands
// over, confirms it once applied, and reports the device's state.
//
// Applying, one change at a time:
// - File mode: the whole desired document is written as
//   {"version":N,"desired":{...}} to the configured file, atomically and
//   durably (temp file, fsync, rename, directory fsync). The write is the
//   apply: if the file already holds exactly that version and document (a
//   restart after the write but before the confirmation was saved) it is
//   not written again, so a change is applied exactly once across crashes.
// - Command mode: the command runs with the document on its standard input
//   and TETHER_DESIRED_VERSION / _SNAPSHOT / _PATCH in its environment; exit
//   status 0 applies it, and a JSON object on its standard output is
//   reported. A crash while it runs runs it again after the restart (at least
//   once; the version in its environment lets it tell).
// A failed apply (write error, non-zero exit, signal, timeout) is retried
// with a doubling delay; meanwhile the link folds newer changes, so the next
// apply is the newest document. The first failure of an episode and its end
// are reported to the observer; every failure is counted.
//
// Reporting: the report command's output (at start and every interval), and
// a desired command's output, go to the link as merge patches. A report the
// server refuses as stale (another instance, or an older copy of this device,
// reported meanwhile) is reported to the observer, counted, and sent again as
// the device's whole reported document based on the server's current version:
// the device's own state is the truth about the device, and the refusal is
// logged, never silent.
//
// Nothing here waits: the loop calls tick(now) every iteration and sleeps no
// longer than next_deadline(), and a short interval while busy().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shell_command.h"
#include "tether/durable_link.h"
#include "tether/status.h"
#include "tether/time.h"

namespace tether::daemon {

/// What the agent needs of the link (DurableLink in tetherd, a fake in tests).
class StateLink {
  public:
    virtual ~StateLink() = default;
    virtual Status desired_applied(std::uint64_t version) = 0;
    virtual Status report(const char* json, std::size_t size, bool whole) = 0;
    virtual std::string reported_document() const = 0;
};

enum class StateEventKind : std::uint8_t {
    kApplied,         ///< `version` applied (and confirmed to the link)
    kApplyFailed,     ///< the first failure of an episode: `end`/`error`; retried
    kApplyRecovered,  ///< an apply worked again after kApplyFailed
    kReportFailed,    ///< the report command failed (`end`), or printed no valid object
    kReportRefused,   ///< the server refused a report (`reason`, current `version`)
    kReportAccepted,  ///< the server took a report: the reported document is at `version`
};
const char* to_string(StateEventKind kind);

struct StateEvent {
    StateEventKind kind = StateEventKind::kApplied;
    std::uint64_t version = 0;
    bool snapshot = false;
    CommandEnd end = CommandEnd::kRunning;  ///< for command failures
    int status = -1;                        ///< waitpid() status when end is kExited/kSignaled
    int error = 0;                          ///< errno of a failed write or start
    const char* reason = "";  ///< kReportRefused: the server's; kReportFailed: what was wrong
};

class StateObserver {
  public:
    virtual ~StateObserver() = default;
    virtual void on_state_event(const StateEvent& event) = 0;
};

struct StateAgentConfig {
    const char* desired_file = nullptr;     ///< file mode when set
    const char* desired_command = nullptr;  ///< command mode when set
    const char* report_command = nullptr;   ///< may be null
    std::uint32_t command_timeout_ms = 10000;
    std::uint32_t retry_delay_ms = 1000;
    std::uint32_t report_interval_ms = 60000;  ///< 0: at start only
    StateObserver* observer = nullptr;
};

struct StateAgentCounters {
    std::uint64_t applied = 0;
    std::uint64_t apply_failures = 0;
    std::uint64_t already_applied = 0;  ///< file mode: found written before a restart
    std::uint64_t reports_made = 0;     ///< patches handed to the link
    std::uint64_t report_failures = 0;  ///< report command failures and invalid outputs
    std::uint64_t reports_refused = 0;
    std::uint64_t reports_accepted = 0;
    std::uint64_t confirm_refused = 0;  ///< the link no longer expected that version
};

class StateAgent {
  public:
    /// Largest document a command may print (the protocol's bound).
    static constexpr std::size_t kMaxOutput = 8192;
    static constexpr std::uint32_t kMaxRetryDelayMs = 60000;

    StateAgent(const StateAgentConfig& config, StateLink& link);

    /// The link's DurableLinkListener::on_desired: the change to apply next.
    void on_desired(const DesiredChange& change);
    /// The link's DurableLinkListener::on_report_answer.
    void on_report_answer(const ReportAnswer& answer);

    void tick(TimeMs now);
    bool busy() const { return apply_.running() || report_.running(); }
    bool next_deadline(TimeMs* at) const;

    bool failing() const { return failing_; }  ///< an apply episode is failing now
    std::uint64_t pending_version() const { return has_pending_ ? pending_version_ : 0; }
    const StateAgentCounters& counters() const { return counters_; }

  private:
    void try_apply(TimeMs now);
    bool write_file();
    void start_command(TimeMs now);
    void finish_command(TimeMs now);
    void applied();
    void failed(CommandEnd end, int status, int error, TimeMs now);
    void run_report(TimeMs now);
    void finish_report();
    void hand_report(const std::string& output, const char* source);
    void emit(StateEventKind kind, CommandEnd end = CommandEnd::kRunning, int status = -1,
              int error = 0, const char* reason = "");

    StateAgentConfig config_;
    StateLink& link_;
    ShellCommand apply_;
    std::string apply_input_;  // what the running desired command reads
    std::vector<std::string> apply_environment_;
    ShellCommand report_;

    bool has_pending_ = false;
    std::uint64_t pending_version_ = 0;
    bool pending_snapshot_ = false;
    std::string pending_document_;
    std::string pending_patch_;
    TimeMs retry_at_ = 0;
    std::uint32_t failures_in_row_ = 0;
    bool failing_ = false;

    bool report_started_once_ = false;
    TimeMs report_due_ = 0;
    StateAgentCounters counters_;
};

}  // namespace tether::daemon

// SPDX-License-Identifier: MIT
#include "tether/port/posix_link.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tether/net/url.h"
#include "tether/port/device_identity.h"
#include "tether/port/poll_loop.h"
#include "tether/port/private_dir.h"

namespace tether::port {

void ReopeningFileStorage::set_path(const char* path) {
    std::snprintf(path_, sizeof path_, "%s", path);
    (void)ensure_open();
}

bool ReopeningFileStorage::ensure_open() {
    if (file_.is_open()) {
        return true;
    }
    if (path_[0] == '\0') {
        open_errno_ = EBADF;
        return false;
    }
    if (file_.open(path_) != Status::kOk) {
        open_errno_ = errno;
        return false;
    }
    open_errno_ = 0;
    return true;
}

Status ReopeningFileStorage::read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                                  std::size_t* read_size) {
    if (!ensure_open()) {
        *read_size = 0;
        return Status::kIoError;
    }
    return file_.read(offset, out, size, read_size);
}

Status ReopeningFileStorage::write(std::uint32_t offset, const std::uint8_t* data,
                                   std::size_t size) {
    return ensure_open() ? file_.write(offset, data, size) : Status::kIoError;
}

Status ReopeningFileStorage::sync() {
    return ensure_open() ? file_.sync() : Status::kIoError;
}

int ReopeningFileStorage::last_error() const {
    return open_errno_ != 0 ? open_errno_ : file_.last_error();
}

PosixLink::PosixLink(const PosixLinkSettings& settings, DurableLinkListener* listener)
    : settings_(settings), listener_(listener) {}

PosixLink::~PosixLink() {
    link_.reset();  // closes the connection before the transport goes
    std::free(memory_);
}

bool PosixLink::fail(Status* status, Status code, const char* format, ...) {
    va_list args;
    va_start(args, format);
    std::vsnprintf(error_, sizeof error_, format, args);
    va_end(args);
    *status = code;
    return false;
}

Status PosixLink::send(const std::uint8_t* data, std::size_t size, std::uint64_t* seq,
                       net::WsOpcode type) {
    return link_->send(monotonic_now(), data, size, seq, type);
}

Status PosixLink::open(RecoveryReport* report) {
    Status status = Status::kOk;
    DurableLinkConfig& config = settings_.link;
    ClientConfig& client = config.client;
    if (link_) {
        fail(&status, Status::kInvalidArgument, "open() was called twice");
        return status;
    }
    if (config.spool && settings_.state_dir == nullptr) {
        fail(&status, Status::kInvalidArgument, "a spool needs a state directory");
        return status;
    }
    if (config.device_state.enabled && settings_.state_dir == nullptr) {
        fail(&status, Status::kInvalidArgument, "device state needs a state directory");
        return status;
    }
    if (settings_.token_file != nullptr && settings_.token_command != nullptr) {
        fail(&status, Status::kInvalidArgument, "give a token file or a token command, not both");
        return status;
    }

    if (entropy_.init(settings_.entropy_label) != Status::kOk) {
        fail(&status, Status::kUnavailable, "no entropy from the operating system");
        return status;
    }
    // TLS is set up when any endpoint needs it; the URL parser decides.
    bool any_tls = false;
    for (std::size_t i = 0; i < client.url_count && i < EndpointPool::kMaxEndpoints; ++i) {
        net::WsUrl url;
        if (net::parse_ws_url(client.urls[i], &url) == net::UrlStatus::kOk && url.tls) {
            any_tls = true;
        }
    }
    if (any_tls && tls_.init(settings_.tls, entropy_) != Status::kOk) {
        fail(&status, Status::kInvalidArgument, "TLS: %s", tls_.error_text());
        return status;
    }
    transport_ = std::make_unique<PosixTransport>(any_tls ? &tls_ : nullptr);

    if (client.reconnect.resume_protocol) {
        if (settings_.device_id != nullptr && settings_.device_id[0] != '\0') {
            std::snprintf(device_id_, sizeof device_id_, "%s", settings_.device_id);
        } else if (read_machine_id(nullptr, device_id_, sizeof device_id_) != Status::kOk) {
            fail(&status, Status::kUnavailable, "no /etc/machine-id: set a device id");
            return status;
        }
        Uuid session{};
        if (session_id_for(settings_.user, device_id_, &session) != Status::kOk) {
            fail(&status, Status::kInvalidArgument, "cannot derive the session id");
            return status;
        }
        format_uuid(session, session_text_);
        client.session_id = session_text_;
        client.device_id = device_id_;
    }

    Storage* state_storage = nullptr;
    Storage* spool_storage = nullptr;
    if (settings_.state_dir != nullptr) {
        char problem[256];
        if (prepare_private_dir(settings_.state_dir, problem, sizeof problem) != Status::kOk) {
            fail(&status, Status::kIoError, "state directory: %s", problem);
            return status;
        }
        std::snprintf(note_, sizeof note_, "%s", problem);  // a repair made, or ""
        // A file that cannot be opened now (a read-only or full file system)
        // does not stop the link: it runs memory-only, says so through
        // on_storage(), and opens the file when a later attempt succeeds.
        char path[4096];
        std::snprintf(path, sizeof path, "%s/state", settings_.state_dir);
        state_file_.set_path(path);
        state_storage = &state_file_;
        if (config.spool) {
            std::snprintf(path, sizeof path, "%s/spool", settings_.state_dir);
            spool_file_.set_path(path);
            spool_storage = &spool_file_;
        }
        if (config.device_state.enabled) {
            std::snprintf(path, sizeof path, "%s/device-state", settings_.state_dir);
            device_state_file_.set_path(path);
        }
        const ReopeningFileStorage* closed = nullptr;
        const char* closed_name = "";
        if (!state_file_.is_open()) {
            closed = &state_file_;
            closed_name = "state";
        } else if (config.spool && !spool_file_.is_open()) {
            closed = &spool_file_;
            closed_name = "spool";
        } else if (config.device_state.enabled && !device_state_file_.is_open()) {
            closed = &device_state_file_;
            closed_name = "device-state";
        }
        if (closed != nullptr) {
            std::snprintf(note_, sizeof note_, "%s/%s: %s; running without it until it opens",
                          settings_.state_dir, closed_name, closed->open_error());
        }
    }

    CredentialsProvider* credentials = nullptr;
    if (settings_.token_command != nullptr) {
        token_command_ = std::make_unique<TokenCommandCredentials>(settings_.token_command);
        // Without a token the first attempt is refused and the command runs
        // again; the caller hears of it through the link's state events.
        (void)token_command_->fetch_now(settings_.token_command_timeout_ms);
        credentials = token_command_.get();
    } else if (settings_.token_file != nullptr) {
        token_file_ = std::make_unique<TokenFileCredentials>(settings_.token_file);
        credentials = token_file_.get();
    }

    sizes_ = DurableLinkSizes::for_config(config);
    memory_ = static_cast<std::uint8_t*>(std::malloc(sizes_.total()));
    if (memory_ == nullptr) {
        fail(&status, Status::kNoSpace, "cannot allocate %zu bytes of buffers", sizes_.total());
        return status;
    }
    std::uint8_t* at = memory_;
    DurableLinkBuffers buffers{};
    buffers.outbox = at;
    at += sizes_.outbox;
    buffers.rx = at;
    at += sizes_.rx;
    buffers.tx = at;
    at += sizes_.tx;
    buffers.spool = sizes_.spool > 0 ? at : nullptr;
    at += sizes_.spool;
    buffers.device_state = sizes_.device_state > 0 ? at : nullptr;

    link_ = std::make_unique<DurableLink>(config, buffers, *transport_, resolver_, entropy_,
                                          state_storage, spool_storage, credentials, listener_);
    if (config.device_state.enabled) {
        link_->set_device_state_storage(&device_state_file_);
    }
    if (link_->open(report) != Status::kOk) {
        fail(&status, Status::kInvalidArgument, "%s", link_->error());
        return status;
    }
    return Status::kOk;
}

bool PosixLink::credentials_problem(std::uint32_t* generation, const char** problem) const {
    if (!token_file_ || token_file_->problem_generation() == *generation) {
        return false;
    }
    *generation = token_file_->problem_generation();
    *problem = token_file_->problem();
    return true;
}

void PosixLink::refresh_credentials() {
    if (token_command_) {
        token_command_->refresh();
    }
}

std::size_t PosixLink::poll_requests(PollRequest* out, std::size_t max) const {
    std::size_t count = link_->poll_requests(out, max);
    if (token_command_ && token_command_->fd() >= 0 && count < max) {
        out[count++] = PollRequest{token_command_->fd(), true, false};
    }
    return count;
}

void PosixLink::service(TimeMs now) {
    if (token_command_) {
        token_command_->on_readable();  // non-blocking: takes what the command printed
    }
    link_->service(now);
}

}  // namespace tether::port

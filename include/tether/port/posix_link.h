// SPDX-License-Identifier: MIT
// The POSIX owner of one durable link: everything a program on Linux needs
// to keep a tether link alive, built from one settings struct.
//
// It makes, once, in open(): the entropy source (one DRBG, for backoff
// jitter, WebSocket keys and masks, and TLS), the TLS context when any URL is
// wss:// (decided by the URL parser, not by the caller), the transport and the
// resolver, the private state directory with its state record and spool files,
// the session id (UUIDv5 of user and device id, the device id defaulting to
// /etc/machine-id), the credentials provider (a token file or a token
// command), and every buffer, sized by DurableLinkSizes. Then it opens the
// tether::DurableLink, which applies the recovery rule.
//
// It is a Pollable: add it to a port::PollLoop and it drives the link and the
// token command's pipe. Nothing is allocated after open().
//
//   tether::port::PosixLinkSettings settings;
//   settings.link.client.urls[0] = "wss://telemetry.example.com/v1";
//   settings.link.client.url_count = 1;
//   settings.link.client.reconnect.resume_protocol = true;
//   settings.state_dir = "/var/lib/app";
//   tether::port::PosixLink link(settings, &listener);
//   if (link.open() != tether::Status::kOk) { puts(link.error()); return 1; }
//   loop.add(&link); link.start(now); ... link.send(data, size) ...
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tether/durable_link.h"
#include "tether/port/credentials.h"
#include "tether/port/entropy.h"
#include "tether/port/file_storage.h"
#include "tether/port/posix_resolver.h"
#include "tether/port/posix_transport.h"
#include "tether/session_id.h"

namespace tether::port {

struct PosixLinkSettings {
    /// URLs, limits, reconnect policy, spool. The session and device ids are
    /// filled in by open().
    DurableLinkConfig link;
    TlsSettings tls;
    /// Where the state record and the spool live (created 0700). Null: nothing
    /// persists, and neither a spool nor device state can be used. With
    /// link.device_state.enabled the device-state record is the file
    /// <state_dir>/device-state.
    const char* state_dir = nullptr;
    /// The session id is derived from these two (tether.v1).
    const char* user = "tether";
    const char* device_id = nullptr;  ///< null or "": /etc/machine-id
    /// At most one of the two; neither: no Authorization header.
    const char* token_file = nullptr;
    const char* token_command = nullptr;
    int token_command_timeout_ms = 5000;  ///< the first fetch, at open()
    /// Personalizes the DRBG (the program's name).
    const char* entropy_label = "tether";
};

/// A file Storage that opens its file when first needed and again after the
/// open failed (a read-only or full file system at start): the durable link
/// then runs memory-only, reports it once, and picks the file up when its
/// retry finds it writable.
class ReopeningFileStorage final : public Storage {
  public:
    /// `path` is copied. Tries to open at once; open_error() says why not.
    void set_path(const char* path);
    Status read(std::uint32_t offset, std::uint8_t* out, std::size_t size,
                std::size_t* read_size) override;
    Status write(std::uint32_t offset, const std::uint8_t* data, std::size_t size) override;
    Status sync() override;
    int last_error() const override;
    bool is_open() const { return file_.is_open(); }
    const char* open_error() const { return file_.open_error(); }

  private:
    bool ensure_open();

    FileStorage file_;
    char path_[4096] = {};
    int open_errno_ = 0;
};

class PosixLink final : public Pollable {
  public:
    /// `settings` is copied; the strings it points to must outlive the link.
    PosixLink(const PosixLinkSettings& settings, DurableLinkListener* listener);
    ~PosixLink() override;
    PosixLink(const PosixLink&) = delete;
    PosixLink& operator=(const PosixLink&) = delete;

    /// Builds everything and recovers (see the file comment). Returns kOk;
    /// kInvalidArgument for settings that cannot work (error() says which);
    /// kUnavailable when the OS gives no entropy or machine id; kIoError when
    /// the state directory or its files cannot be made (error() has errno's
    /// text). `report` may be null.
    Status open(RecoveryReport* report = nullptr);
    const char* error() const { return error_; }
    /// After open(): a repair open() made that the caller should log (a state
    /// directory whose mode was loosened), or "".
    const char* note() const { return note_; }

    DurableLink& link() { return *link_; }
    const DurableLink& link() const { return *link_; }
    void start(TimeMs now) { link_->start(now); }
    /// DurableLink::send() at monotonic_now(): the message's age (where the
    /// server takes ages) counts from this call.
    Status send(const std::uint8_t* data, std::size_t size, std::uint64_t* seq = nullptr,
                net::WsOpcode type = net::WsOpcode::kContinuation);
    /// The link's entropy source (after open()), for ids of the caller's own.
    RandomSource& random() { return entropy_; }
    /// The token file's problem (missing, empty, too long...) when it changed
    /// since `*generation` (start at 0): true with *problem set ("" once it is
    /// fixed) and *generation updated. For logging each change once.
    bool credentials_problem(std::uint32_t* generation, const char** problem) const;
    /// The token command runs again in the background (SIGHUP, a rotated secret).
    void refresh_credentials();

    const char* session_id() const { return session_text_; }
    const char* device_id() const { return device_id_; }
    const DurableLinkSizes& sizes() const { return sizes_; }

    // Pollable: the link, plus the token command's pipe while it runs.
    std::size_t poll_requests(PollRequest* out, std::size_t max) const override;
    bool next_deadline(TimeMs* at) const override { return link_->next_deadline(at); }
    bool has_buffered_input() const override { return link_->has_buffered_input(); }
    void service(TimeMs now) override;

  private:
    bool fail(Status* status, Status code, const char* format, ...)
        __attribute__((format(printf, 4, 5)));

    PosixLinkSettings settings_;
    DurableLinkListener* listener_;
    DurableLinkSizes sizes_;
    std::uint8_t* memory_ = nullptr;  // every buffer, one allocation made in open()

    Entropy entropy_;
    TlsContext tls_;
    std::unique_ptr<PosixTransport> transport_;
    PosixResolver resolver_;
    ReopeningFileStorage state_file_;
    ReopeningFileStorage spool_file_;
    ReopeningFileStorage device_state_file_;
    std::unique_ptr<TokenFileCredentials> token_file_;
    std::unique_ptr<TokenCommandCredentials> token_command_;
    std::unique_ptr<DurableLink> link_;

    char device_id_[256] = {};
    char session_text_[kUuidTextLength + 1] = {};
    char error_[512] = {};
    char note_[256] = {};
};

}  // namespace tether::port

// SPDX-License-Identifier: MIT
// tether-server's loop. One poll() over the wake pipe, the listeners, the
// admin sockets and every client; then timers, the batched store sync and
// the ACKs it allows, and the removal of dead connections.
#include "server.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "admin.h"
#include "file_engine.h"
#if defined(TETHER_SERVER_REDIS)
#include "hiredis_link.h"
#include "tether/server/redis_engine.h"
#endif
#include "admin_token_file.h"
#include "listener.h"
#include "tether/net/tether_v1.h"
#include "tether/port/poll_loop.h"
#include "tether/server/admin_policy.h"

namespace tether::server {
namespace {

int g_wake_pipe[2] = {-1, -1};

// The 503 a connection beyond --max-connections gets, without reading its request.
constexpr char kBusyResponse[] =
    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n"
    "Retry-After: 5\r\n\r\n";

// The errnos accept_connection() reports, by name (for logfmt).
const char* errno_name(int error) {
    switch (error) {
        case EMFILE:
            return "EMFILE";
        case ENFILE:
            return "ENFILE";
        case ENOBUFS:
            return "ENOBUFS";
        case ENOMEM:
            return "ENOMEM";
        default:
            return "other";
    }
}

StoreOptions store_options_for(const Options& options) {
    StoreOptions store_options;
    store_options.replay_capacity = options.replay_capacity;
    store_options.max_payload_size = options.max_message_size;
    store_options.max_open_sessions = options.max_open_sessions;
    return store_options;
}

}  // namespace

Server::Server(const Options& options) : options_(options), throttle_(options.auth_throttle) {
    log_start_ = port::monotonic_now();
}

namespace {

std::string default_instance_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
        std::snprintf(host, sizeof host, "tether-server");
    }
    return std::string(host) + "-" + std::to_string(static_cast<long long>(::getpid()));
}

}  // namespace

bool Server::make_engine() {
    if (options_.store == Options::Store::kFile) {
        engine_.reset(new FileEngine(options_.data_dir, store_options_for(options_)));
        engine_->set_events(this);
        return true;
    }
#if defined(TETHER_SERVER_REDIS)
    HiredisLinkOptions link_options;
    std::string error;
    auto address = [&error](const ListenAddress& a, RedisAddress* out) {
        const bool v6 = a.host.find(':') != std::string::npos;
        const std::string text = (v6 ? "[" + a.host + "]" : a.host) + ":" + std::to_string(a.port);
        return parse_redis_address(text, out, &error);
    };
    if (options_.sentinels.empty()) {
        if (!address(options_.redis, &link_options.primary)) {
            log(LogLevel::kError, "event=error what=redis reason=\"--redis: %s\"", error.c_str());
            return false;
        }
    } else {
        for (const ListenAddress& sentinel : options_.sentinels) {
            RedisAddress parsed;
            if (!address(sentinel, &parsed)) {
                log(LogLevel::kError, "event=error what=redis reason=\"--redis-sentinel: %s\"",
                    error.c_str());
                return false;
            }
            link_options.sentinels.push_back(parsed);
        }
        link_options.master_name = options_.redis_master;
    }
    link_options.log = [this](std::string_view line) {
        log(LogLevel::kInfo, "event=redis %.*s", static_cast<int>(line.size()), line.data());
    };
    RedisEngineOptions engine_options;
    engine_options.prefix = options_.redis_prefix;
    engine_options.instance =
        options_.instance_id.empty() ? default_instance_id() : options_.instance_id;
    engine_options.durability =
        options_.redis_replicas == 0 ? RedisDurability::kReply : RedisDurability::kReplicas;
    engine_options.replicas = options_.redis_replicas;
    engine_options.wait_timeout_ms = options_.redis_wait_timeout_ms;
    engine_options.replay_capacity = static_cast<std::uint32_t>(options_.replay_capacity);
    engine_options.uplink_maxlen = options_.redis_uplink_maxlen;
    engine_options.max_payload_size = options_.max_message_size;
    engine_options.unix_time_ms = [this] { return wall_clock_ms(); };
    engine_options.log = [this](std::string_view line) {
        log(LogLevel::kInfo, "event=redis %.*s", static_cast<int>(line.size()), line.data());
    };
    auto* link = new HiredisLink(link_options);
    redis_link_.reset(link);
    engine_.reset(new RedisEngine(*link, engine_options));
    engine_->set_events(this);
    log(LogLevel::kInfo, "event=store kind=redis instance=%s", engine_options.instance.c_str());
    return true;
#else
    log(LogLevel::kError,
        "event=error what=store reason=\"this tether-server was built without hiredis\"");
    return false;
#endif
}

std::uint64_t Server::wall_clock_ms() const {
    // 0 when the clock cannot be read: backends then see no receive time
    // rather than a wrong one.
    timespec now{};
    if (::clock_gettime(CLOCK_REALTIME, &now) != 0 || now.tv_sec < 0) {
        return 0;
    }
    return static_cast<std::uint64_t>(now.tv_sec) * 1000u +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000000u;
}

Server::~Server() {
    clients_.clear();
    admins_.clear();
    for (int fd : {listen_fd_, tls_listen_fd_, admin_fd_}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
}

const char* to_string(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug:
            return "debug";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kWarn:
            return "warn";
        case LogLevel::kError:
            return "error";
    }
    return "unknown";
}

// "t=SECONDS level=LEVEL event=...": the keys and the clock of tetherd's and
// tether-cat's lines (t: monotonic seconds since this process started).
void Server::log(LogLevel level, const char* format, ...) {
    char line[640];
    va_list arguments;
    va_start(arguments, format);
    std::vsnprintf(line, sizeof line, format, arguments);
    va_end(arguments);
    std::fprintf(stderr, "t=%.3f level=%s %s\n",
                 static_cast<double>(time_since(port::monotonic_now(), log_start_)) / 1000.0,
                 to_string(level), line);
}

void Server::request_stop_from_signal() {
    if (g_wake_pipe[1] >= 0) {
        const char byte = 's';
        (void)!::write(g_wake_pipe[1], &byte, 1);
    }
}

bool Server::start() {
    if (::pipe(g_wake_pipe) != 0) {
        log(LogLevel::kError, "event=error what=pipe");
        return false;
    }
    set_nonblocking(g_wake_pipe[0]);
    set_nonblocking(g_wake_pipe[1]);
    if (!make_engine()) {
        return false;
    }
    const Status opened = engine_->open(port::monotonic_now());
    if (opened != Status::kOk) {
        log(LogLevel::kError, "event=error what=store dir=%s status=%s", options_.data_dir.c_str(),
            to_string(opened));
        return false;
    }
    if (!load_admin_token()) {
        return false;
    }
    if (!options_.tokens_file.empty()) {
        std::size_t bad_line = 0;
        const Status loaded = port::load_token_file(&tokens_, options_.tokens_file, &bad_line);
        if (loaded != Status::kOk) {
            log(LogLevel::kError, "event=error what=tokens file=%s status=%s line=%zu",
                options_.tokens_file.c_str(), to_string(loaded), bad_line);
            return false;
        }
    }
    std::string error;
    std::uint16_t listen_port = 0;
    std::uint16_t tls_port = 0;
    std::uint16_t admin_port = 0;
    if (options_.tls_listen.enabled) {
        if (!entropy_.ready() && entropy_.init("tether-server") != Status::kOk) {
            log(LogLevel::kError, "event=error what=entropy");
            return false;
        }
        tls_.reset(new port::TlsServerContext());
        port::TlsServerSettings settings;
        settings.cert_file = options_.cert_file.c_str();
        settings.key_file = options_.key_file.c_str();
        settings.client_ca_file =
            options_.client_ca_file.empty() ? nullptr : options_.client_ca_file.c_str();
        if (tls_->init(settings, entropy_) != Status::kOk) {
            log(LogLevel::kError, "event=error what=tls reason=\"%s\"", tls_->error_text());
            return false;
        }
        tls_listen_fd_ = open_listener(options_.tls_listen, &tls_port, &error);
        if (tls_listen_fd_ < 0) {
            log(LogLevel::kError, "event=error what=listen reason=\"%s\"", error.c_str());
            return false;
        }
    }
    if (options_.listen.enabled) {
        listen_fd_ = open_listener(options_.listen, &listen_port, &error);
        if (listen_fd_ < 0) {
            log(LogLevel::kError, "event=error what=listen reason=\"%s\"", error.c_str());
            return false;
        }
    }
    admin_fd_ = open_listener(options_.admin, &admin_port, &error);
    if (admin_fd_ < 0) {
        log(LogLevel::kError, "event=error what=admin reason=\"%s\"", error.c_str());
        return false;
    }
    std::printf("listen=%u tls=%u admin=%u\n", listen_port, tls_port, admin_port);
    std::fflush(stdout);
    return true;
}

bool Server::load_admin_token() {
    if (!options_.admin_token_file.empty()) {
        const Status read = port::read_admin_token_file(options_.admin_token_file, &admin_token_);
        if (read != Status::kOk) {
            if (read == Status::kCorrupt) {
                log(LogLevel::kError,
                    "event=error what=admin_token file=%s status=%s why=\"an admin token is "
                    "one line of %zu to %zu visible ASCII characters\"",
                    options_.admin_token_file.c_str(), to_string(read),
                    server::kMinAdminTokenLength, server::kMaxAdminTokenLength);
            } else {
                log(LogLevel::kError, "event=error what=admin_token file=%s status=%s",
                    options_.admin_token_file.c_str(), to_string(read));
            }
            return false;
        }
        log(LogLevel::kInfo, "event=admin_token file=%s created=0",
            options_.admin_token_file.c_str());
        return true;
    }
    // The server's own token, from its entropy source (never a weaker one).
    if (!entropy_.ready() && entropy_.init("tether-server") != Status::kOk) {
        log(LogLevel::kError, "event=error what=entropy");
        return false;
    }
    const std::string path = options_.data_dir + "/admin.token";
    bool created = false;
    const Status loaded = port::load_or_create_admin_token(path, entropy_, &admin_token_, &created);
    if (loaded != Status::kOk) {
        log(LogLevel::kError, "event=error what=admin_token file=%s status=%s%s", path.c_str(),
            to_string(loaded),
            loaded == Status::kInvalidArgument
                ? " why=\"not a regular file of this user with mode 0600\""
                : "");
        return false;
    }
    log(LogLevel::kInfo, "event=admin_token file=%s created=%d", path.c_str(), created ? 1 : 0);
    return true;
}

bool Server::admin_authorized(const std::string& header_block, const std::string& path) {
    if (admin_request_authorized(header_block, admin_token_)) {
        return true;
    }
    ++counters_.admin_unauthorized;
    std::string lower = header_block;
    for (char& c : lower) {
        c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    const bool sent = lower.find("\r\nauthorization:") != std::string::npos;
    log(LogLevel::kWarn, "event=admin_unauthorized path=%s why=%s",
        path.size() > 64 ? "long" : path.c_str(), sent ? "wrong_token" : "no_token");
    return false;
}

void Server::note_uplink(bool sync_now) {
    if (unsynced_ == 0) {
        first_unsynced_at_ = port::monotonic_now();
    }
    ++unsynced_;
    sync_now_ = sync_now_ || sync_now;
}

bool Server::upgrade_throttled(const net::IpAddress& peer, TimeMs now,
                               std::uint32_t* retry_after_s) {
    const AuthThrottle::Verdict verdict = throttle_.check(AddressKey::of(peer), now);
    if (!verdict.throttled) {
        return false;
    }
    ++counters_.upgrades_throttled;
    *retry_after_s = verdict.retry_after_s;
    return true;
}

void Server::upgrade_unauthorized(const net::IpAddress& peer, TimeMs now) {
    ++counters_.upgrades_unauthorized;
    if (throttle_.record_failure(AddressKey::of(peer), now)) {
        // Once per penalty: the 429s that follow are counted, not logged.
        char text[net::kIpAddressTextCapacity];
        net::format_ip_address(peer, text, sizeof text);
        log(LogLevel::kWarn,
            "event=upgrade_throttled addr=%s failures=%u window_ms=%u penalty_ms=%u", text,
            throttle_.config().max_failures, throttle_.config().window_ms,
            throttle_.config().penalty_ms);
    }
}

void Server::sync_store(TimeMs now) {
    unsynced_ = 0;
    sync_now_ = false;
    engine_->flush(now);  // ACKs follow through on_acknowledgeable
}

ClientConnection* Server::live_connection(std::string_view session) {
    const auto live = live_.find(session);
    return live != live_.end() ? live->second : nullptr;
}

void Server::on_hello(std::uint64_t ticket, Status status, const HelloResult& result) {
    const auto found = by_id_.find(ticket);
    if (found != by_id_.end()) {
        found->second->on_hello_answer(status, result);
    }
}

void Server::on_acknowledgeable(std::string_view session, std::uint64_t last_uplink) {
    if (ClientConnection* live = live_connection(session)) {
        live->send_ack(last_uplink);
    }
}

void Server::on_downlink_ready(std::string_view session) {
    if (ClientConnection* live = live_connection(session)) {
        live->downlink_ready();
    }
}

void Server::on_superseded(std::string_view session, std::uint32_t version) {
    ClientConnection* live = live_connection(session);
    if (live != nullptr && live->version() <= version) {
        live->log(LogLevel::kInfo, "event=superseded conn=%llu session=%s version=%u by_version=%u",
                  static_cast<unsigned long long>(live->id()), live->session().c_str(),
                  live->version(), version);
        live->close_with(net::v1::kCloseSuperseded, "superseded", port::monotonic_now());
    }
}

void Server::on_session_failed(std::string_view session, Status status) {
    if (ClientConnection* live = live_connection(session)) {
        live->log(LogLevel::kError, "event=store_error conn=%llu session=%s status=%s",
                  static_cast<unsigned long long>(live->id()), live->session().c_str(),
                  to_string(status));
        live->close_with(1011, "store", port::monotonic_now());
    }
}

void Server::on_pushed(std::uint64_t ticket, Status status, std::uint64_t seq) {
    const auto found = pushes_.find(ticket);
    if (found == pushes_.end()) {
        return;  // the admin connection went away; the message is stored all the same
    }
    AdminConnection* admin = found->second;
    pushes_.erase(found);
    admin->finish_push(status, seq);
}

AdminConnection* Server::take_admin(std::uint64_t ticket) {
    const auto found = pushes_.find(ticket);
    if (found == pushes_.end()) {
        return nullptr;  // the admin connection went away
    }
    AdminConnection* admin = found->second;
    pushes_.erase(found);
    return admin;
}

void Server::on_desired_changed(std::string_view session, std::uint64_t version) {
    if (ClientConnection* live = live_connection(session)) {
        live->desired_changed(version);
    }
}

void Server::on_desired_since(std::uint64_t ticket, Status status,
                              const std::vector<DesiredChange>& changes) {
    const auto found = state_tickets_.find(ticket);
    if (found == state_tickets_.end()) {
        return;
    }
    const auto connection = by_id_.find(found->second.connection);
    state_tickets_.erase(found);
    if (connection != by_id_.end()) {
        connection->second->on_desired_answer(status, changes);
    }
}

void Server::on_reported(std::uint64_t ticket, Status status, const ReportResult& result) {
    const auto found = state_tickets_.find(ticket);
    if (found == state_tickets_.end()) {
        return;
    }
    const std::string id = found->second.report_id;
    const auto connection = by_id_.find(found->second.connection);
    state_tickets_.erase(found);
    if (connection != by_id_.end()) {
        connection->second->on_report_answer(id, status, result);
    }
}

void Server::on_desired_set(std::uint64_t ticket, Status status, std::uint64_t version) {
    if (status == Status::kOk) {
        ++counters_.desired_set;
    }
    if (AdminConnection* admin = take_admin(ticket)) {
        admin->finish_desired(status, version);
    }
}

void Server::on_state_read(std::uint64_t ticket, Status status, const StateDocuments& documents) {
    if (AdminConnection* admin = take_admin(ticket)) {
        admin->finish_state(status, documents);
    }
}

Status Server::ask_desired_since(ClientConnection* connection, std::uint64_t applied) {
    const std::uint64_t ticket = next_state_ticket_++;
    const Status asked = engine_->desired_since(connection->session(), applied, ticket);
    if (asked == Status::kOk) {
        state_tickets_[ticket] = StateTicket{connection->id(), std::string()};
    }
    return asked;
}

Status Server::ask_report(ClientConnection* connection, const ReportRequest& request) {
    const std::uint64_t ticket = next_state_ticket_++;
    const Status asked = engine_->report(request, ticket);
    if (asked == Status::kOk) {
        state_tickets_[ticket] = StateTicket{connection->id(), std::string(request.id)};
    }
    return asked;
}

void Server::on_store_error(const char* what, Status status, const char* detail) {
    log(LogLevel::kError, "event=store_error op=%s status=%s detail=\"%s\"", what,
        to_string(status), detail);
}

void Server::claim_session(const std::string& session, ClientConnection* connection, TimeMs now) {
    const auto existing = live_.find(session);
    if (existing != live_.end() && existing->second != connection) {
        ClientConnection* older = existing->second;
        live_.erase(existing);
        older->close_with(net::v1::kCloseSuperseded, "superseded", now);
    }
    live_[session] = connection;
    ++metrics_.hellos_accepted;
    engine_->claim(session);
}

void Server::release_session(const std::string& session, ClientConnection* connection) {
    const auto existing = live_.find(session);
    if (existing != live_.end() && existing->second == connection) {
        live_.erase(existing);
        engine_->release(session);
    }
}

void Server::accept_failed(int error, TimeMs now) {
    ++counters_.accept_backoffs;
    if (accept_backoff_.on_failure(now)) {
        // Once per episode: the pauses that follow are counted, not logged.
        log(LogLevel::kWarn, "event=accept_backoff errno=%s pause_ms=%u connections=%zu",
            errno_name(error), accept_backoff_.last_pause_ms(), clients_.size());
    }
}

void Server::accept_clients(int listener, port::TlsServerContext* tls, TimeMs now) {
    for (int accepted = 0; accepted < 64; ++accepted) {
        net::IpAddress peer{};
        std::uint16_t peer_port = 0;
        int error = 0;
        const int fd = accept_connection(listener, &peer, &error, &peer_port);
        if (fd < 0) {
            if (error != 0) {
                accept_failed(error, now);
            }
            return;
        }
        accept_backoff_.on_success();
        ++metrics_.connections_accepted;
        if (stopping_ || clients_.size() >= options_.max_connections) {
            upgrade_rejected(UpgradeRejection::kTooMany);
            (void)!::write(fd, kBusyResponse, sizeof kBusyResponse - 1);
            ::close(fd);
            continue;
        }
        std::unique_ptr<ClientConnection> client(new ClientConnection(*this, next_id_++, tls, now));
        if (client->adopt(fd, peer, peer_port)) {
            by_id_[client->id()] = client.get();
            clients_.push_back(std::move(client));
        }
    }
}

void Server::accept_admin(TimeMs now) {
    for (;;) {
        int error = 0;
        const int fd = accept_connection(admin_fd_, nullptr, &error);
        if (fd < 0) {
            if (error != 0) {
                accept_failed(error, now);
            }
            return;
        }
        accept_backoff_.on_success();
        reap_admins();
        if (admins_.size() < options_.admin_max_connections) {
            admins_.emplace_back(new AdminConnection(*this, fd, now));
            continue;
        }
        // Full: the idle connection open longest gives way, so connections
        // that send nothing cannot lock the interface out.
        std::vector<AdminSlot> slots;
        slots.reserve(admins_.size());
        for (const auto& admin : admins_) {
            slots.push_back(AdminSlot{admin->opened_at(), admin->idle()});
        }
        const std::size_t victim = admin_victim(slots.data(), slots.size(), now);
        if (victim == kNoAdminVictim) {
            ++counters_.admin_refused;
            log(LogLevel::kWarn, "event=admin_refused connections=%zu", admins_.size());
            ::close(fd);
            continue;
        }
        ++counters_.admin_evicted;
        log(LogLevel::kWarn, "event=admin_evicted age_ms=%u",
            time_since(now, admins_[victim]->opened_at()));
        admins_[victim].reset(new AdminConnection(*this, fd, now));
    }
}

void Server::begin_shutdown(TimeMs now) {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    stop_deadline_ = now + options_.close_timeout_ms;
    log(LogLevel::kInfo, "event=stopping connections=%zu", clients_.size());
    for (auto& client : clients_) {
        client->close_with(1001, "shutdown", now);
    }
    sync_store(now);
}

int Server::poll_timeout(TimeMs now) {
    std::uint32_t wait = 1000;
    for (auto& client : clients_) {
        const std::uint32_t next = client->tick(now, faults_.silenced);
        wait = next < wait ? next : wait;
        if (client->has_buffered_input() && !faults_.silenced) {
            wait = 0;
        }
    }
    if (unsynced_ != 0) {
        const std::uint32_t since = time_since(now, first_unsynced_at_);
        const std::uint32_t left =
            since >= options_.ack_interval_ms ? 0 : options_.ack_interval_ms - since;
        wait = left < wait ? left : wait;
    }
    if (faults_.silenced) {
        const std::uint32_t left = time_until(now, faults_.silence_until);
        wait = left < wait ? left : wait;
    }
    TimeMs engine_at = 0;
    if (engine_->has_buffered_input()) {
        wait = 0;
    } else if (engine_->next_deadline(&engine_at)) {
        const std::uint32_t left = time_until(now, engine_at);
        wait = left < wait ? left : wait;
    }
    for (auto& admin : admins_) {
        std::uint32_t left = 0;
        if (!admin->done() && admin->expire(now, options_.admin_timeout_ms, &left)) {
            ++counters_.admin_timeouts;
            log(LogLevel::kWarn, "event=admin_timeout age_ms=%u",
                time_since(now, admin->opened_at()));
        } else if (!admin->done()) {
            wait = left < wait ? left : wait;
        }
    }
    if (stopping_) {
        wait = wait > 50 ? 50 : wait;
    }
    if (accept_backoff_.paused(now)) {
        const std::uint32_t left = accept_backoff_.wait_ms(now);
        wait = left < wait ? left : wait;
    }
    return static_cast<int>(wait);
}

void Server::reap() {
    for (std::size_t i = 0; i < clients_.size();) {
        if (clients_[i]->dead()) {
            // Answers still due to it find no connection (state_tickets_
            // entries go when they arrive).
            by_id_.erase(clients_[i]->id());
            clients_[i] = std::move(clients_.back());
            clients_.pop_back();
        } else {
            ++i;
        }
    }
    reap_admins();
}

void Server::reap_admins() {
    for (std::size_t i = 0; i < admins_.size();) {
        if (admins_[i]->done()) {
            for (auto push = pushes_.begin(); push != pushes_.end();) {
                push = push->second == admins_[i].get() ? pushes_.erase(push) : std::next(push);
            }
            admins_[i] = std::move(admins_.back());
            admins_.pop_back();
        } else {
            ++i;
        }
    }
}

int Server::run() {
    for (;;) {
        TimeMs now = port::monotonic_now();
        if (faults_.silenced && time_reached(now, faults_.silence_until)) {
            faults_.silenced = false;
            log(LogLevel::kInfo, "event=silence_over");
        }
        if (faults_.rejecting && time_reached(now, faults_.reject_until)) {
            faults_.rejecting = false;
        }
        if (quit_requested_) {
            begin_shutdown(now);
        }
        if (stopping_ && (clients_.empty() || time_reached(now, stop_deadline_))) {
            clients_.clear();
            by_id_.clear();
            engine_->close();
            log(LogLevel::kInfo, "event=stopped");
            return kExitOk;
        }
        throttle_.prune(now);
        const int timeout = poll_timeout(now);
        reap();

        // Out of descriptors, a listener stays readable (the connection is
        // still queued): while the pause lasts it is not polled at all.
        const bool accepting = !accept_backoff_.paused(now);
        fds_.clear();
        fds_.push_back(pollfd{g_wake_pipe[0], POLLIN, 0});
        fds_.push_back(pollfd{stopping_ || !accepting ? -1 : listen_fd_, POLLIN, 0});
        fds_.push_back(pollfd{stopping_ || !accepting ? -1 : tls_listen_fd_, POLLIN, 0});
        fds_.push_back(pollfd{accepting ? admin_fd_ : -1, POLLIN, 0});
        const std::size_t first_admin = fds_.size();
        for (auto& admin : admins_) {
            fds_.push_back(pollfd{admin->fd(), admin->poll_events(), 0});
        }
        const std::size_t first_client = fds_.size();
        for (auto& client : clients_) {
            fds_.push_back(pollfd{client->fd(), client->poll_events(faults_.silenced), 0});
        }
        const std::size_t first_engine = fds_.size();
        PollRequest engine_fds[Pollable::kMaxPollRequests];
        const std::size_t engine_count =
            engine_->poll_requests(engine_fds, Pollable::kMaxPollRequests);
        for (std::size_t i = 0; i < engine_count; ++i) {
            short events = 0;
            if (engine_fds[i].read) {
                events = static_cast<short>(events | POLLIN);
            }
            if (engine_fds[i].write) {
                events = static_cast<short>(events | POLLOUT);
            }
            fds_.push_back(pollfd{engine_fds[i].fd, events, 0});
        }
        const int ready = ::poll(fds_.data(), fds_.size(), timeout);
        if (ready < 0 && errno != EINTR) {
            log(LogLevel::kError, "event=error what=poll");
            return kExitRuntime;
        }
        now = port::monotonic_now();
        if ((fds_[0].revents & POLLIN) != 0) {
            char buffer[16];
            while (::read(g_wake_pipe[0], buffer, sizeof buffer) > 0) {
            }
            quit_requested_ = true;
        }
        // The engine's answers first: they decide what the clients' next steps are.
        engine_->service(now);
        // Clients in the order polled (accepting appends to clients_).
        const std::size_t polled_clients = first_engine - first_client;
        for (std::size_t i = 0; i < polled_clients && i < clients_.size(); ++i) {
            const short revents = fds_[first_client + i].revents;
            if (revents != 0 || (clients_[i]->has_buffered_input() && !faults_.silenced)) {
                clients_[i]->service(now, faults_.silenced);
            }
        }
        if ((fds_[1].revents & POLLIN) != 0) {
            accept_clients(listen_fd_, nullptr, now);
        }
        if ((fds_[2].revents & POLLIN) != 0) {
            accept_clients(tls_listen_fd_, tls_.get(), now);
        }
        for (std::size_t i = 0; i < admins_.size() && first_admin + i < first_client; ++i) {
            if (fds_[first_admin + i].revents != 0) {
                admins_[i]->service(now);
            }
        }
        if ((fds_[3].revents & POLLIN) != 0) {
            accept_admin(now);
        }
        if (unsynced_ != 0 && (sync_now_ || unsynced_ >= options_.ack_every ||
                               time_since(now, first_unsynced_at_) >= options_.ack_interval_ms)) {
            sync_store(now);
        }
        for (auto& client : clients_) {
            client->pump(now);
        }
    }
}

// --- Admin operations ---------------------------------------------------------------

void Server::fault_reset() {
    log(LogLevel::kInfo, "event=fault what=reset connections=%zu", clients_.size());
    for (auto& client : clients_) {
        client->reset();
    }
}

void Server::fault_close(std::uint16_t code, const std::string& reason, TimeMs now) {
    log(LogLevel::kInfo, "event=fault what=close code=%u connections=%zu", code, clients_.size());
    for (auto& client : clients_) {
        client->close_with(code, reason.empty() ? nullptr : reason.c_str(), now);
    }
}

void Server::fault_silence(std::uint32_t ms, TimeMs now) {
    log(LogLevel::kInfo, "event=fault what=silence ms=%u", ms);
    faults_.silenced = ms != 0;
    faults_.silence_until = now + ms;
}

void Server::fault_reject(std::uint16_t status, bool has_retry_after, std::uint32_t retry_after,
                          std::uint32_t ms, TimeMs now) {
    log(LogLevel::kInfo, "event=fault what=reject status=%u ms=%u", status, ms);
    faults_.rejecting = ms != 0;
    faults_.reject_until = now + ms;
    faults_.reject_status = status;
    faults_.reject_has_retry_after = has_retry_after;
    faults_.reject_retry_after = retry_after;
}

std::size_t Server::expire_tokens(const std::string& token, bool all, TimeMs now) {
    if (all) {
        tokens_.expire_all();
    } else if (!tokens_.expire(token)) {
        return 0;
    }
    std::size_t closed = 0;
    for (auto& client : clients_) {
        if (!client->dead() && !client->token().empty() && (all || client->token() == token)) {
            client->close_with(net::v1::kCloseAuthFailed, "token_expired", now);
            ++closed;
        }
    }
    log(LogLevel::kInfo, "event=tokens_expired all=%d closed=%zu", all ? 1 : 0, closed);
    return closed + 1;
}

Status Server::set_desired(const std::string& session, const std::string& patch, bool has_expected,
                           std::uint64_t expected, AdminConnection* admin) {
    const std::uint64_t ticket = next_push_ticket_++;
    const Status asked = engine_->set_desired(session, patch, has_expected, expected, ticket);
    if (asked == Status::kOk) {
        pushes_[ticket] = admin;
    }
    return asked;
}

Status Server::read_state(const std::string& session, AdminConnection* admin) {
    const std::uint64_t ticket = next_push_ticket_++;
    const Status asked = engine_->read_state(session, ticket);
    if (asked == Status::kOk) {
        pushes_[ticket] = admin;
    }
    return asked;
}

Status Server::push_downlink(const std::string& session, const std::string& body,
                             AdminConnection* admin) {
    const std::uint64_t ticket = next_push_ticket_++;
    const Status asked = engine_->push_downlink(
        session, reinterpret_cast<const std::uint8_t*>(body.data()), body.size(), ticket);
    if (asked == Status::kOk) {
        pushes_[ticket] = admin;
    }
    return asked;
}

}  // namespace tether::server

// SPDX-License-Identifier: MIT
#include <mbedtls/error.h>

#include <cstdio>
#include <cstring>
#include <new>

#include "tls_files.h"
#include "tls_state.h"

namespace tether::port {
namespace {

constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

bool is_file_error(int result) {
    return result == MBEDTLS_ERR_X509_FILE_IO_ERROR || result == MBEDTLS_ERR_PK_FILE_IO_ERROR;
}

}  // namespace

void TlsContext::State::init_objects() {
    mbedtls_ssl_config_init(&config);
    mbedtls_x509_crt_init(&ca_chain);
    mbedtls_x509_crt_init(&client_cert);
    mbedtls_pk_init(&client_key);
    mbedtls_ssl_session_init(&saved);
    mbedtls_ssl_session_init(&fresh);
    ready = false;
    has_saved = false;
}

void TlsContext::State::free_objects() {
    mbedtls_ssl_session_free(&fresh);
    mbedtls_ssl_session_free(&saved);
    mbedtls_pk_free(&client_key);
    mbedtls_x509_crt_free(&client_cert);
    mbedtls_x509_crt_free(&ca_chain);
    mbedtls_ssl_config_free(&config);
}

TlsContext::TlsContext() = default;

TlsContext::~TlsContext() {
    if (state_ != nullptr) {
        state_->free_objects();
        delete state_;
    }
}

Status TlsContext::init(const TlsSettings& settings, Entropy& entropy) {
    settings_ = settings;
    error_text_[0] = '\0';
    if (state_ == nullptr) {
        state_ = new (std::nothrow) State;
        if (state_ == nullptr) {
            std::snprintf(error_text_, sizeof error_text_, "out of memory");
            return Status::kUnavailable;
        }
    } else {
        state_->free_objects();
    }
    state_->init_objects();

    if (!entropy.ready()) {
        std::snprintf(error_text_, sizeof error_text_, "entropy source not ready");
        return Status::kUnavailable;
    }
    // Reports a failed mbedTLS call with its own description.
    auto failed = [this](const char* what, const char* path, int result) {
        char reason[96];
        mbedtls_strerror(result, reason, sizeof reason);
        std::snprintf(error_text_, sizeof error_text_, "%s %s: %s", what,
                      path != nullptr ? path : "", reason);
        return is_file_error(result) ? Status::kNotFound : Status::kCorrupt;
    };
    // A file that could not be read: its path and errno's text.
    auto unreadable = [this](const char* what, const char* path, int os_error) {
        std::snprintf(error_text_, sizeof error_text_, "%s %s: %s", what, path,
                      std::strerror(os_error));
        return Status::kNotFound;
    };
    int os_error = 0;

    const bool has_cert = settings.client_cert_file != nullptr;
    const bool has_key = settings.client_key_file != nullptr;
    if (has_cert != has_key) {
        std::snprintf(error_text_, sizeof error_text_,
                      "client certificate and key must be given together");
        return Status::kInvalidArgument;
    }

    // A bundle in which some certificates do not parse (positive result) is
    // still usable as long as one did; only an empty chain is fatal.
    const char* ca_file = settings.ca_file != nullptr ? settings.ca_file : kSystemCaBundle;
    int result = parse_certificate_file(&state_->ca_chain, ca_file, &os_error);
    if (os_error != 0) {
        return unreadable("CA file", ca_file, os_error);
    }
    if (result < 0 || state_->ca_chain.version == 0) {
        return failed("CA file", ca_file, result < 0 ? result : MBEDTLS_ERR_X509_INVALID_FORMAT);
    }
    if (has_cert) {
        result = parse_certificate_file(&state_->client_cert, settings.client_cert_file, &os_error);
        if (os_error != 0) {
            return unreadable("client certificate", settings.client_cert_file, os_error);
        }
        if (result != 0) {
            return failed("client certificate", settings.client_cert_file,
                          result < 0 ? result : MBEDTLS_ERR_X509_INVALID_FORMAT);
        }
        result = parse_key_file(&state_->client_key, settings.client_key_file, &os_error);
        if (os_error != 0) {
            return unreadable("client key", settings.client_key_file, os_error);
        }
        if (result != 0) {
            return failed("client key", settings.client_key_file, result);
        }
        result = mbedtls_pk_check_pair(&state_->client_cert.pk, &state_->client_key);
        if (result != 0) {
            return failed("client key does not match", settings.client_cert_file, result);
        }
    }

    mbedtls_ssl_config* config = &state_->config;
    result = mbedtls_ssl_config_defaults(config, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (result != 0) {
        return failed("TLS configuration", nullptr, result);
    }
    // TLS 1.2 only: the TLS 1.3 code of mbedTLS 2.28 is experimental.
    mbedtls_ssl_conf_min_version(config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(config, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(
        config, settings.insecure ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(config, &state_->ca_chain, nullptr);
    mbedtls_ssl_conf_rng(config, Entropy::rng_callback, entropy.rng_context());
    mbedtls_ssl_conf_session_tickets(config, settings.session_resumption
                                                 ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                                 : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
    if (has_cert) {
        result = mbedtls_ssl_conf_own_cert(config, &state_->client_cert, &state_->client_key);
        if (result != 0) {
            return failed("client certificate", settings.client_cert_file, result);
        }
    }
    state_->ready = true;
    return Status::kOk;
}

}  // namespace tether::port

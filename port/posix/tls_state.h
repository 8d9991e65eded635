// SPDX-License-Identifier: MIT
// The mbedTLS objects behind TlsContext and PosixTransport, shared by the
// files of port/posix that implement them. Nothing outside port/ sees them.
#pragma once

#include "tls_bio.h"

#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include <cstddef>

#include "tether/net/ip_address.h"
#include "tether/port/posix_transport.h"

namespace tether::port {

// Longest DNS name (253) and its NUL, rounded up.
inline constexpr std::size_t kServerNameCapacity = 256;

// Plaintext that one write hands to mbedtls_ssl_write: at most one record.
// mbedTLS requires a call that returned WANT_WRITE to be repeated with the
// same arguments, so the bytes are kept here until their record is out.
inline constexpr std::size_t kStageSize = 4096;

struct TlsContext::State {
    mbedtls_ssl_config config;
    mbedtls_x509_crt ca_chain;
    mbedtls_x509_crt client_cert;
    mbedtls_pk_context client_key;
    bool ready = false;
    // The session of the last full or resumed handshake, offered on the next
    // connection to the same server name. `fresh` receives the session of a
    // handshake that just finished; the two are swapped, so both keep their
    // mbedTLS allocations (peer certificate, ticket) for one connection only.
    mbedtls_ssl_session saved;
    mbedtls_ssl_session fresh;
    bool has_saved = false;
    char saved_name[kServerNameCapacity] = {};

    void init_objects();
    void free_objects();
};

struct PosixTransport::TlsState {
    mbedtls_ssl_context ssl;
    const mbedtls_ssl_config* bound_config = nullptr;  // the config ssl was set up with
    SocketBio bio;            // the socket, and its error if the BIO saw one
    bool name_is_ip = false;  // the server name is an IP literal, checked against the IP SANs
    net::IpAddress expected_ip = {};
    char server_name[kServerNameCapacity] = {};
    bool offered_session = false;
    std::size_t staged = 0;  // bytes of `stage` inside a record that is not fully sent
    unsigned char stage[kStageSize];
};

}  // namespace tether::port

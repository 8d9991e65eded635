// SPDX-License-Identifier: MIT
// PEM and DER files for mbedTLS, read by us rather than by
// mbedtls_x509_crt_parse_file / mbedtls_pk_parse_keyfile, so that a file that
// is missing or unreadable is reported with errno ("No such file or
// directory", "Permission denied") instead of mbedTLS's "file read error".
#pragma once

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

namespace tether::port {

/// Adds the certificates of `path` to `chain`. Returns what
/// mbedtls_x509_crt_parse returns (0, the positive number of certificates
/// that did not parse, or a negative mbedTLS error), or -1 with *os_error set
/// to errno when the file could not be read (*os_error is 0 otherwise).
int parse_certificate_file(mbedtls_x509_crt* chain, const char* path, int* os_error);

/// Parses the (unencrypted) private key in `path` into `key`: 0, a negative
/// mbedTLS error, or -1 with *os_error set when the file could not be read.
/// The copy of the key in memory is wiped before returning.
int parse_key_file(mbedtls_pk_context* key, const char* path, int* os_error);

}  // namespace tether::port

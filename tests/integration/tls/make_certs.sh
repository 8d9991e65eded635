#!/bin/sh
# SPDX-License-Identifier: MIT
# Generates the TLS material for tether's integration tests into DIR.
# Usage: make_certs.sh DIR
#
#   ca.pem / ca.key                  test CA the client trusts
#   server.pem / server.key          leaf for DNS:localhost and IP:127.0.0.1, signed by ca
#   server-chain.pem                 server.pem followed by ca.pem
#   server-rsa.pem / server-rsa.key  the same names with an RSA-2048 key, signed by ca
#   wrong.pem / wrong.key            leaf for DNS:wrong.example only, signed by ca
#   expired.pem / expired.key        leaf for localhost signed by ca whose notAfter
#                                    lies a day in the past
#   other-ca.pem / other-ca.key      an unrelated CA (trust it to test "unknown CA")
#   other-server.pem / .key          leaf for localhost signed by the unrelated CA
#   client-ca.pem / client-ca.key    CA for client certificates (mutual TLS)
#   client.pem / client.key          client certificate signed by client-ca
#   server.pin                       SHA-256 of server.pem's SubjectPublicKeyInfo:
#                                    lines `base64=...` and `hex=...`
#
# EC P-256 keys except server-rsa; validity starts now (machine clock) and
# lasts 30 days. Regenerate per test run rather than committing the output.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
cd "$dir"
days=30

ec_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# ca NAME SUBJECT: a self-signed CA.
ca() {
    ec_key "$1.key"
    openssl req -new -x509 -key "$1.key" -out "$1.pem" -days "$days" -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
}

# leaf NAME ISSUER SUBJECT SAN EKU [DAYS]: a certificate for NAME.key signed by ISSUER.
leaf() {
    cat > "$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$5
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EOF
    [ -z "$4" ] || echo "subjectAltName=$4" >> "$1.ext"
    openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
        -days "${6:-$days}" -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "tether test CA"
ca other-ca "unrelated test CA"
ca client-ca "tether test client CA"

ec_key server.key
leaf server ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth
cat server.pem ca.pem > server-chain.pem

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server-rsa.key 2>/dev/null
leaf server-rsa ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth

ec_key wrong.key
leaf wrong ca wrong.example "DNS:wrong.example" serverAuth

# A negative validity puts notAfter a day before now: expired on arrival.
ec_key expired.key
leaf expired ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth -1

ec_key other-server.key
leaf other-server other-ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth

ec_key client.key
leaf client client-ca "tether-test-device" "" clientAuth

openssl x509 -in server.pem -pubkey -noout | openssl pkey -pubin -outform der > server.spki.der
{
    printf 'base64=%s\n' "$(openssl dgst -sha256 -binary server.spki.der | openssl base64 -A)"
    printf 'hex=%s\n' "$(openssl dgst -sha256 -r server.spki.der | cut -d' ' -f1)"
} > server.pin
rm -f server.spki.der ./*.srl
chmod 600 ./*.key

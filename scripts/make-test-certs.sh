#!/usr/bin/env bash
# Writes the TLS test material of tests/manager/tls/ (feature `tls`): two
# certificate authorities, a server and a client certificate from the first, and a
# "stranger" certificate (usable by either side) from the second, which nothing
# trusts. P-256 keys in PKCS#8 PEM; valid for 100 years from the day this ran.
#
#   scripts/make-test-certs.sh [DIR]      # default: tests/manager/tls
#
# Needs the openssl command-line tool. The tests read the committed files; run this
# again only to renew or change them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-tests/manager/tls}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
days=36500

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
    key "$tmp/$1.key"
    openssl req -x509 -new -key "$tmp/$1.key" -days $days -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$out/$1.pem"
}

leaf() { # name ca subject eku
    key "$out/$1.key"
    openssl req -new -key "$out/$1.key" -subj "/CN=$3" -out "$tmp/$1.csr"
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=$4" \
        "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$tmp/$1.ext"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$out/$2.pem" -CAkey "$tmp/$2.key" \
        -CAcreateserial -CAserial "$tmp/$2.srl" -days $days -extfile "$tmp/$1.ext" \
        -out "$out/$1.pem" 2>/dev/null
}

ca ca "mproc test CA"
ca other-ca "mproc untrusted test CA"
leaf server ca "mproc test server" serverAuth
leaf client ca "mproc test client" clientAuth
leaf stranger other-ca "mproc stranger" "serverAuth,clientAuth"
echo "wrote $(ls "$out" | tr '\n' ' ')to $out"

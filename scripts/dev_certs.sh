#!/usr/bin/env bash
# Throwaway certificates for trying TLS and mutual TLS locally (and for scripts/check_clients.sh):
#
#   scripts/dev_certs.sh DIR [DAYS]
#
# writes into DIR (created; mode 700): ca.crt + ca.key (a self-signed CA), server.crt + server.key
# (signed by it; subjectAltName localhost, 127.0.0.1 and ::1; serverAuth + clientAuth) and
# client.crt + client.key (signed by it; clientAuth). EC P-256 keys, PKCS#8 PEM, unencrypted,
# valid DAYS days (default 1). Never commit them or use them outside a laptop or a CI run.
#
# Server:  DRIFTWISE_TLS__CERT_FILE=DIR/server.crt DRIFTWISE_TLS__KEY_FILE=DIR/server.key
#          DRIFTWISE_TLS__CLIENT_CA_FILE=DIR/ca.crt (mutual TLS)   driftwise serve
# Clients: DRIFTWISE_TLS_CA=DIR/ca.crt DRIFTWISE_TLS_CERT=DIR/client.crt DRIFTWISE_TLS_KEY=DIR/client.key
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [DAYS]" >&2; exit 2; }
dir=$1 days=${2:-1}
OPENSSL=${OPENSSL:-/usr/bin/openssl}
mkdir -p "$dir"
chmod 700 "$dir"

ossl() {
  local out
  out=$("$OPENSSL" "$@" 2>&1) || { printf '%s\ndev_certs.sh: openssl %s failed\n' "$out" "$1" >&2; exit 1; }
}
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

ossl req -x509 "${newkey[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" \
  -subj "/CN=driftwise-dev-ca" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# leaf NAME CN EXTENSIONS: a key and a certificate signed by the CA
leaf() {
  printf '%b' "$3" >"$dir/$1.ext"
  ossl req -new "${newkey[@]}" -keyout "$dir/$1.key" -out "$dir/$1.csr" -subj "/CN=$2"
  ossl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/$1.crt" -days "$days" -extfile "$dir/$1.ext"
  rm -f "$dir/$1.csr" "$dir/$1.ext"
}
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth,clientAuth\n"
leaf client driftwise-dev-client "extendedKeyUsage=clientAuth\n"
chmod 600 "$dir"/*.key
echo "dev_certs.sh: CA, server and client certificates in $dir" >&2

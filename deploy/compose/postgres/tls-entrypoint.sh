#!/bin/sh
# Entry point of the PostgreSQL servers under compose.secure.yaml. PostgreSQL refuses a private
# key that others may read, and secrets mounted from files keep the host's owner and mode, so
# the key is installed with the owner and mode PostgreSQL wants. Then the image's own entry
# point runs the command of compose.yaml with TLS turned on.
set -eu
tls=/var/run/postgresql/tls
install -d -o postgres -g postgres -m 0700 "$tls"
install -o postgres -g postgres -m 0600 "/run/secrets/${TLS_NAME:?}.key" "$tls/server.key"
install -o postgres -g postgres -m 0644 "/run/secrets/${TLS_NAME}.crt" "$tls/server.crt"
exec docker-entrypoint.sh "$@" \
    -c ssl=on \
    -c ssl_cert_file="$tls/server.crt" \
    -c ssl_key_file="$tls/server.key" \
    -c ssl_min_protocol_version=TLSv1.2

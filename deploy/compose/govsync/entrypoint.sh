#!/bin/sh
# Entry point of the govsync containers in compose: `govsync "$@"`, after one preparation.
# libpq ignores a password file that group or others may read, and compose mounts secrets from
# files with the host's owner and mode. So the password in the file named by DB_PASSWORD_FILE
# is copied into a private password file (PGPASSFILE, in the container's tmpfs), and the DSN
# never holds it.
set -eu
if [ -n "${DB_PASSWORD_FILE:-}" ]; then
    umask 077
    PGPASSFILE="${TMPDIR:-/tmp}/govsync.pgpass"
    # escape what the password file format gives meaning to: backslash and colon
    printf '*:*:*:*:%s\n' "$(sed 's/[\\:]/\\&/g' "$DB_PASSWORD_FILE")" > "$PGPASSFILE"
    export PGPASSFILE
fi
exec govsync "$@"

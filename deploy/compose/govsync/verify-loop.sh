#!/bin/sh
# The verify service: `govsync verify` of every replica against its sources, every
# VERIFY_EVERY_SECONDS, one run at a time, its outcome pushed to PUSHGATEWAY. The addresses come
# from the federation file (GOVSYNC_FEDERATION); the passwords from the libpq password file
# PGPASSWORD_FILE names, copied where libpq accepts it (private, in the container's tmpfs).
# A run that finds drift or fails exits non-zero; the loop goes on, the alerts say it.
set -u
umask 077
PGPASSFILE="${TMPDIR:-/tmp}/verify.pgpass"
cp "${PGPASSWORD_FILE:?}" "$PGPASSFILE"
export PGPASSFILE
while :; do
    govsync verify --pushgateway "${PUSHGATEWAY:?}" > /dev/null || echo "verify: not equal or failed (exit $?)"
    sleep "${VERIFY_EVERY_SECONDS:-3600}"
done

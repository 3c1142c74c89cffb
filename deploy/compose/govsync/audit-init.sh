#!/bin/sh
# One-shot job (service audit-init): creates the disclosure audit store in the database named
# by GOVSYNC_AUDIT_DSN, makes govsync_dpo (the data protection officer) its reader, and each
# agency's replica role (govsync_replica_<agency>) the writer of that agency's chain and of
# nothing else. The agencies are AUDIT_WRITERS, rendered from federation.yaml.
# `govsync audit init` is idempotent, so the job runs on every start.
set -eu
: "${AUDIT_WRITERS:?set AUDIT_WRITERS to the subscribing agencies}"
here=$(dirname "$0")
sh "$here/entrypoint.sh" audit init --reader govsync_dpo
for agency in $AUDIT_WRITERS; do
    sh "$here/entrypoint.sh" audit init --writer "govsync_replica_${agency}" --agency "$agency"
done

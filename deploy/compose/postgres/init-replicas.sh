#!/bin/bash
# Runs once, when postgres-replicas initialises its data directory (docker-entrypoint-initdb.d).
# For every subscribing agency named in $REPLICA_AGENCIES it creates:
#
#   replica_<agency>             the agency's replica database; nobody else may connect to it
#   govsync_replica_<agency>     the replica writer (the agency's processor): owns its replica
#                                database and nothing else, and creates the tables there
#   <agency>_reader              the agency's applications: read-only, NOLOGIN (grant it to
#                                the agency's login roles)
#
# and the registry's store: database `registry`, owned by role govsync_registry; and the
# disclosure audit's database `audit`, closed to PUBLIC (the audit-init job creates the store
# in it and lets each replica writer in, to append to its own agency's chain only).
# Passwords are read from /run/secrets/pg-replica-<agency>, pg-registry and pg-dpo (or
# $SECRETS_DIR).
#
# `init-replicas.sh --agency CODE` adds one agency to a server that is already running (its
# role and replica database only), for an agency that joins the federation later.
set -euo pipefail
secrets=${SECRETS_DIR:-/run/secrets}
if [[ "${1:-}" == "--agency" ]]; then
    REPLICA_AGENCIES=${2:?--agency needs the agency code}
fi

for agency in ${REPLICA_AGENCIES:?set REPLICA_AGENCIES to the subscribing agencies}; do
    psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=database="replica_${agency}" \
        --set=writer="govsync_replica_${agency}" \
        --set=reader="${agency}_reader" \
        --set=writer_secret="$secrets/pg-replica-${agency}" <<'SQL'
\set writer_password `cat :'writer_secret'`
CREATE ROLE :"writer" LOGIN PASSWORD :'writer_password';
CREATE ROLE :"reader" NOLOGIN;
CREATE DATABASE :"database" OWNER :"writer";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"reader";

\connect :"database"
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- the processor creates one schema per contract domain and govsync_state; readers see them all
ALTER DEFAULT PRIVILEGES FOR ROLE :"writer" GRANT USAGE ON SCHEMAS TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"writer" GRANT SELECT ON TABLES TO :"reader";
SQL
done
[[ "${1:-}" == "--agency" ]] && exit 0

psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=registry_secret="$secrets/pg-registry" <<'SQL'
\set registry_password `cat :'registry_secret'`
CREATE ROLE govsync_registry LOGIN PASSWORD :'registry_password';
CREATE DATABASE registry OWNER govsync_registry;
REVOKE ALL ON DATABASE registry FROM PUBLIC;
SQL

# closed to PUBLIC: `govsync audit init` (the audit-init job) lets its writers and readers in;
# govsync_dpo is the data protection officer's login, which audit-init makes its reader
psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=dpo_secret="$secrets/pg-dpo" <<'SQL'
\set dpo_password `cat :'dpo_secret'`
CREATE ROLE govsync_dpo LOGIN PASSWORD :'dpo_password';
CREATE DATABASE audit;
REVOKE ALL ON DATABASE audit FROM PUBLIC;
SQL

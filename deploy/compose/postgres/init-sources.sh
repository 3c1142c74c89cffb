#!/bin/bash
# Runs once, when postgres-sources initialises its data directory (docker-entrypoint-initdb.d).
# For every source agency named in $SOURCES it creates:
#
#   <source>                     the agency's database; nobody else may connect to it
#   <source>_owner               the agency's own application role: owns the database and its
#                                tables, and the publication govsync_<source> over them
#   govsync_connector_<source>   the connector: LOGIN REPLICATION, CONNECT to this database
#                                only, SELECT on the tables (the snapshot), its own schema
#                                govsync (snapshot bookkeeping) and EXECUTE on
#                                pg_log_standby_snapshot(); it owns no agency table
#
# Passwords are read from /run/secrets/pg-owner-<source> and /run/secrets/pg-connector-<source>
# inside psql (never on a command line); $SECRETS_DIR, if set, holds them instead.
set -euo pipefail
secrets=${SECRETS_DIR:-/run/secrets}

for source in ${SOURCES:?set SOURCES to the source agencies}; do
    psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=source="$source" \
        --set=owner="${source}_owner" \
        --set=connector="govsync_connector_${source}" \
        --set=owner_secret="$secrets/pg-owner-${source}" \
        --set=connector_secret="$secrets/pg-connector-${source}" <<'SQL'
\set owner_password `cat :'owner_secret'`
\set connector_password `cat :'connector_secret'`
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"connector" LOGIN REPLICATION PASSWORD :'connector_password';
CREATE DATABASE :"source" OWNER :"owner";
REVOKE ALL ON DATABASE :"source" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"source" TO :"connector";
-- The connector runs `CREATE SCHEMA IF NOT EXISTS govsync` at every start, and PostgreSQL
-- checks CREATE on the database even when the schema exists. Without ownership of the tables
-- the privilege cannot reach them: it only lets the connector create schemas of its own.
GRANT CREATE ON DATABASE :"source" TO :"connector";

\connect :"source"
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"connector";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"connector";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"connector";
CREATE SCHEMA govsync AUTHORIZATION :"connector";
-- lets the slot's restart point follow the stream (see connectors/postgres/slot.py)
GRANT EXECUTE ON FUNCTION pg_log_standby_snapshot() TO :"connector";
SQL
done

#!/bin/bash
# Creates every secret the compose deployment mounts, in this directory (or in $1):
#
#   passwords      postgres-{sources,replicas}-superuser, pg-dpo, pg-owner-<source>,
#                  pg-connector-<source>, pg-replica-<agency>, pg-registry, grafana-admin,
#                  kafka-<principal> (SCRAM, one per Kafka principal)
#   per processor  audit-signing-<agency> (its Ed25519 audit signing key, PEM) and
#                  hash-keys-<agency> (JSON: key name -> 32 random bytes as hex; the names come
#                  from ../govsync/hash-keys.txt: its pseudonyms' keys and the key of its
#                  remembered deletes, remembered-deletes.<agency>; a name an existing file
#                  lacks is added to it)
#   registry       registry-<principal> (each process's registry password), registry-admin
#                  (the operators'), and registry-users, the registry's users file made of
#                  them with the roles of ../govsync/registry-roles.txt (rewritten each run)
#   verify         verify-pgpass (libpq password file of every connector and replica role)
#                  and verify-hash-keys (every agency's hash keys in one JSON object), for the
#                  verify service; rewritten each run
#   TLS (secure)   ca.crt/ca.key (a private CA), kafka-{1,2,3}.p12 and kafka-admin.p12
#                  (PKCS#12, each with a .password file), postgres-{sources,replicas}.{crt,key}
#
# The agencies come from ../kafka/acls.txt (rendered by deploy/render.py): one connector per
# govsync-connector-<source> principal, one replica per govsync-processor-<agency>.
# Existing files are kept, so running it again only adds what is missing; delete a file to
# rotate it. The directory is made private to its owner; the files in it stay readable
# because the containers read them as other users. Needs bash and openssl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
acls=${ACLS_FILE:-$here/../kafka/acls.txt}
hash_keys=${HASH_KEYS_FILE:-$here/../govsync/hash-keys.txt}
registry_roles=${REGISTRY_ROLES_FILE:-$here/../govsync/registry-roles.txt}
days=825
mkdir -p "$out"
chmod 700 "$out"
cd "$out"

principals=$(grep -v '^#' "$acls" | cut -d' ' -f1 | sort -u)
sources=$(sed -n 's/^govsync-connector-//p' <<< "$principals")
agencies=$(sed -n 's/^govsync-processor-//p' <<< "$principals")

password() {  # password FILE: 48 hex digits, safe in every config syntax that embeds it
    [[ -e "$1" ]] || { openssl rand -hex 24 > "$1"; chmod 644 "$1"; }
}

password postgres-sources-superuser
password postgres-replicas-superuser
password pg-registry
password pg-dpo
password grafana-admin
for source in $sources; do
    password "pg-owner-$source"
    password "pg-connector-$source"
done
for agency in $agencies; do
    password "pg-replica-$agency"
done
for principal in $principals; do
    password "kafka-$principal"
done
password registry-admin
users="admin:$(cat registry-admin):admin"$'\n'
while read -r user role; do
    [[ -z "$user" || "$user" == \#* ]] && continue
    password "registry-$user"
    users+="$user:$(cat "registry-$user"):$role"$'\n'
done < "$registry_roles"
printf '%s' "$users" > registry-users
chmod 644 registry-users

for agency in $agencies; do
    if [[ ! -e "audit-signing-$agency" ]]; then
        openssl genpkey -algorithm ed25519 -out "audit-signing-$agency"
        chmod 644 "audit-signing-$agency"
    fi
done
while read -r agency names; do
    [[ -z "$agency" || "$agency" == \#* ]] && continue
    file="hash-keys-$agency"
    [[ -e "$file" ]] || printf '{}\n' > "$file"
    for name in $names; do  # keys already there are kept: rotating one needs a migration
        grep -qF "\"$name\":" "$file" && continue
        body=$(sed 's/^{//; s/}$//' "$file")
        printf '{%s"%s": "%s"}\n' "${body:+$body, }" "$name" "$(openssl rand -hex 32)" > "$file"
    done
    chmod 644 "$file"
done < "$hash_keys"

if [[ ! -e ca.crt ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
        -subj "/CN=govsync compose CA" -keyout ca.key -out ca.crt \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2> /dev/null
    chmod 600 ca.key
    chmod 644 ca.crt
fi

certificate() {  # certificate NAME USAGE: NAME.crt and NAME.key signed by the CA, for host NAME
    local name=$1 usage=$2
    [[ -e "$name.crt" ]] && return
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
        -keyout "$name.key" -out "$name.csr" 2> /dev/null
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
        -out "$name.crt" -extfile <(printf '%s\n' \
            "subjectAltName=DNS:$name" \
            "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=$usage") 2> /dev/null
    rm -f "$name.csr"
    chmod 644 "$name.crt" "$name.key"
}

keystore() {  # keystore NAME USAGE: NAME.p12 holding NAME's key and chain, NAME.p12.password
    local name=$1
    [[ -e "$name.p12" ]] && return
    certificate "$name" "$2"
    password "$name.p12.password"
    openssl pkcs12 -export -name "$name" -inkey "$name.key" -in "$name.crt" -certfile ca.crt \
        -passout "file:$name.p12.password" -out "$name.p12"
    chmod 644 "$name.p12"
    rm -f "$name.key" "$name.crt"
}

for broker in kafka-1 kafka-2 kafka-3; do
    keystore "$broker" serverAuth,clientAuth
done
keystore kafka-admin clientAuth
certificate postgres-sources serverAuth
certificate postgres-replicas serverAuth
# the verify service reads every source as its connector and every replica as its writer
{
    for source in $sources; do
        echo "postgres-sources:5432:$source:govsync_connector_$source:$(cat "pg-connector-$source")"
    done
    for agency in $agencies; do
        echo "postgres-replicas:5432:replica_$agency:govsync_replica_$agency:$(cat "pg-replica-$agency")"
    done
} > verify-pgpass
merged=''
for file in hash-keys-*; do
    [[ -e "$file" ]] || continue
    body=$(sed 's/^{//; s/}$//' "$file")
    merged+="${merged:+, }$body"
done
printf '{%s}\n' "$merged" > verify-hash-keys
chmod 644 verify-pgpass verify-hash-keys

echo "secrets in $out"

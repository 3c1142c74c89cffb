#!/bin/bash
# One-shot job (service kafka-init): waits for the three brokers, then creates every topic of
# topics.txt with its partitions, replication factor and configuration. With
# compose.secure.yaml it also creates each principal's SCRAM credentials and ACLs (acls.txt),
# logging in as the `admin` super user with a TLS client certificate.
# topics.txt and acls.txt are rendered by deploy/render.py. Every step is idempotent.
set -euo pipefail

KAFKA=${KAFKA_BIN:-/opt/kafka/bin}
: "${BOOTSTRAP:?}" "${TOPICS_FILE:?}"
ARGS=(--bootstrap-server "$BOOTSTRAP")

if [[ -n "${ADMIN_KEYSTORE:-}" ]]; then
    umask 077
    config=${TMPDIR:-/tmp}/admin.properties
    {
        echo "security.protocol=SSL"
        echo "ssl.keystore.type=PKCS12"
        echo "ssl.keystore.location=$ADMIN_KEYSTORE"
        echo "ssl.keystore.password=$(cat "${ADMIN_KEYSTORE_PASSWORD_FILE:?}")"
        echo "ssl.truststore.type=PEM"
        echo "ssl.truststore.location=${CA_FILE:?}"
    } > "$config"
    ARGS+=(--command-config "$config")
fi

echo "waiting for 3 brokers at $BOOTSTRAP"
for _ in $(seq 1 60); do
    brokers=$("$KAFKA/kafka-broker-api-versions.sh" "${ARGS[@]}" 2>/dev/null | grep -c '^[^ ].* (id: ' || true)
    [[ "$brokers" -ge 3 ]] && break
    sleep 5
done
[[ "${brokers:-0}" -ge 3 ]] || { echo "brokers not ready" >&2; exit 1; }

while read -r topic partitions replicas config; do
    [[ -z "$topic" || "$topic" == \#* ]] && continue
    configs=()
    IFS=, read -ra pairs <<< "$config"
    for pair in "${pairs[@]}"; do configs+=(--config "$pair"); done
    "$KAFKA/kafka-topics.sh" "${ARGS[@]}" --create --if-not-exists --topic "$topic" \
        --partitions "$partitions" --replication-factor "$replicas" "${configs[@]}"
done < "$TOPICS_FILE"

if [[ -n "${ACLS_FILE:-}" ]]; then
    # one SCRAM credential per principal, its password from /run/secrets/kafka-<principal>
    grep -v '^#' "$ACLS_FILE" | cut -d' ' -f1 | sort -u | while read -r principal; do
        password=$(cat "${USER_SECRETS_DIR:-/run/secrets}/kafka-$principal")
        "$KAFKA/kafka-configs.sh" "${ARGS[@]}" --alter --entity-type users \
            --entity-name "$principal" \
            --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
    done
    while read -r principal resource pattern name operations; do
        [[ -z "$principal" || "$principal" == \#* ]] && continue
        ops=()
        IFS=, read -ra names <<< "$operations"
        for op in "${names[@]}"; do ops+=(--operation "$op"); done
        "$KAFKA/kafka-acls.sh" "${ARGS[@]}" --add --allow-principal "User:$principal" \
            "${ops[@]}" "--$resource" "$name" --resource-pattern-type "$pattern"
    done < "$ACLS_FILE"
fi
echo "kafka-init done"

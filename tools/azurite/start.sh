#!/usr/bin/env bash
# Start Azurite (blob and queue; its table service comes along unused) on 127.0.0.1 for the
# state-store and queued-run tests and CI.
#
#   AZURITE_BLOB_PORT  blob port (default 10000)
#   AZURITE_QUEUE_PORT queue port (default 10001)
#   AZURITE_TABLE_PORT table port (default 10002)
#   AZURITE_PID_FILE   where to write the PID (default tools/azurite/azurite.pid); stop with `kill "$(cat ...)"`
#   AZURITE_LOG_FILE   Azurite's console output (default tools/azurite/azurite.log)
#
# Prints the connection string on stdout (everything else goes to stderr), so a caller can do
#   AZURITE_CONNECTION_STRING="$(tools/azurite/start.sh)"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${AZURITE_BLOB_PORT:-10000}"
queue_port="${AZURITE_QUEUE_PORT:-10001}"
table_port="${AZURITE_TABLE_PORT:-10002}"
pid_file="${AZURITE_PID_FILE:-$here/azurite.pid}"
log_file="${AZURITE_LOG_FILE:-$here/azurite.log}"
bin="$here/node_modules/.bin/azurite"

port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/${1:-$port}") 2>/dev/null
}

if [ ! -x "$bin" ]; then
    echo "installing the pinned Azurite into $here/node_modules ..." >&2
    if [ -f "$here/package-lock.json" ]; then
        (cd "$here" && npm ci --no-audit --no-fund) >&2
    else
        (cd "$here" && npm install --no-audit --no-fund) >&2
    fi
fi

# Without this check the wait below would "succeed" against whatever already listens there.
for p in "$port" "$queue_port" "$table_port"; do
    if port_answers "$p"; then
        echo "port 127.0.0.1:$p is already in use; set AZURITE_BLOB_PORT, AZURITE_QUEUE_PORT and AZURITE_TABLE_PORT to free ports" >&2
        exit 1
    fi
done

# --skipApiVersionCheck: the Python SDK's default x-ms-version runs ahead of what Azurite accepts.
# --inMemoryPersistence: nothing to clean up on disk; every start is a fresh account.
"$bin" --blobHost 127.0.0.1 --blobPort "$port" --queueHost 127.0.0.1 --queuePort "$queue_port" \
    --tableHost 127.0.0.1 --tablePort "$table_port" \
    --skipApiVersionCheck --disableTelemetry --inMemoryPersistence --silent \
    </dev/null >"$log_file" 2>&1 &
pid=$!
echo "$pid" >"$pid_file"

for _ in $(seq 1 300); do
    if port_answers && port_answers "$queue_port"; then
        echo "Azurite (pid $pid) listening on 127.0.0.1:$port (blob) and :$queue_port (queue)" >&2
        # The emulator's published, well-known development account (not a secret).
        printf 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;'
        printf 'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;'
        printf 'BlobEndpoint=http://127.0.0.1:%s/devstoreaccount1;' "$port"
        printf 'QueueEndpoint=http://127.0.0.1:%s/devstoreaccount1;\n' "$queue_port"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "Azurite exited during startup; its output:" >&2
        cat "$log_file" >&2
        rm -f "$pid_file"
        exit 1
    fi
    sleep 0.1
done

echo "Azurite did not open 127.0.0.1:$port within 30 s; stopping it" >&2
kill "$pid" 2>/dev/null || true
rm -f "$pid_file"
exit 1

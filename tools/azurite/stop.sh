#!/usr/bin/env bash
# Stop the Azurite started by start.sh, by the PID it recorded (AZURITE_PID_FILE, same default).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pid_file="${AZURITE_PID_FILE:-$here/azurite.pid}"

if [ ! -f "$pid_file" ]; then
    echo "no $pid_file: nothing to stop" >&2
    exit 0
fi
pid="$(cat "$pid_file")"
if kill "$pid" 2>/dev/null; then
    # SIGTERM closes the service within a second or two; wait so the port is free afterwards.
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "Azurite (pid $pid) ignored SIGTERM for 5 s; killing it" >&2
        kill -9 "$pid" 2>/dev/null || true
    fi
fi
rm -f "$pid_file"

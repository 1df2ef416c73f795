#!/usr/bin/env bash
# Test a WebSocket CLIENT with Autobahn|Testsuite (wstest -m fuzzingserver).
#
# Start:  test-client.sh PORT OUTDIR [CASES] [EXCLUDE]
#   Starts the fuzzing server on ws://127.0.0.1:PORT in the background (bounded
#   by AB_TIMEOUT seconds, default 3600), waits until it listens and prints its
#   PID as the last stdout line. The client under test then follows the standard
#   protocol: GET /getCaseCount, /runCase?case=N&agent=NAME for N=1..count,
#   then /updateReports?agent=NAME (which writes OUTDIR/index.json + HTML).
#   CASES / EXCLUDE: comma lists of case patterns (default '*' / none).
#
# Stop:   test-client.sh stop OUTDIR
#   Asks the server for /updateReports (so a report exists even if the client
#   never asked), stops the server by its PID and runs summarize.py OUTDIR.
#   Exit status: 1 when the server was no longer running (crash or AB_TIMEOUT), else
#   that of summarize.py (0, or 2 when no report exists).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# venv and unpacked suite: .autobahn/ at the repository root (setup.sh), or $AB_HOME
AB_HOME="${AB_HOME:-$(cd "$HERE/../.." && pwd)/.autobahn}"
WSTEST="$AB_HOME/.venv/bin/wstest"
PY="$AB_HOME/.venv/bin/python"
usage() { sed -n '2,16p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
[ -x "$WSTEST" ] || { echo "wstest not installed; run $HERE/setup.sh" >&2; exit 2; }

if [ "$1" = "stop" ]; then
  OUTDIR="$(cd "$2" && pwd)"
  PID="$(cat "$OUTDIR/fuzzingserver.pid" 2>/dev/null || true)"
  PORT="$(cat "$OUTDIR/fuzzingserver.port" 2>/dev/null || true)"
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    PORT="$PORT" "$PY" - <<'EOF' || echo "autobahn: /updateReports request failed" >&2
import asyncio, os
from websockets.asyncio.client import connect
async def main():
    async with connect("ws://127.0.0.1:%s/updateReports?agent=_stop_" % os.environ["PORT"], open_timeout=10) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 300)   # server closes once reports are written
        except Exception:
            pass
asyncio.run(main())
EOF
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
    echo "autobahn: fuzzingserver (pid $PID) stopped"
    RC=0
  else
    # It should run until stopped here: gone means it crashed or hit AB_TIMEOUT.
    echo "autobahn: no running fuzzingserver recorded in $OUTDIR" >&2
    RC=1
  fi
  rm -f "$OUTDIR/fuzzingserver.pid"
  SUM_RC=0
  "$PY" "$HERE/summarize.py" "$OUTDIR" || SUM_RC=$?
  [ "$RC" = 0 ] || exit "$RC"
  exit "$SUM_RC"
fi

PORT="$1"
OUTDIR="$2"
CASES="${3:-*}"
EXCLUDE="${4:-}"
TIMEOUT="${AB_TIMEOUT:-3600}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
SPEC="$OUTDIR/fuzzingserver.json"
rm -f "$OUTDIR/index.json"

PORT="$PORT" OUTDIR="$OUTDIR" CASES="$CASES" EXCLUDE="$EXCLUDE" "$PY" - > "$SPEC" <<'EOF'
import json, os
split = lambda s: [x.strip() for x in s.split(",") if x.strip()]
print(json.dumps({"url": "ws://127.0.0.1:%d" % int(os.environ["PORT"]),
                  "interface": "127.0.0.1",
                  "outdir": os.environ["OUTDIR"],
                  "cases": split(os.environ["CASES"]) or ["*"],
                  "exclude-cases": split(os.environ["EXCLUDE"]),
                  "exclude-agent-cases": {}}, indent=2))
EOF

# -u 0: no embedded web server (it would listen on 8080)
cd "$OUTDIR"
nohup timeout -k 10 "$TIMEOUT" "$WSTEST" -m fuzzingserver -s "$SPEC" -u 0 > "$OUTDIR/wstest.log" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$OUTDIR/fuzzingserver.pid"
echo "$PORT" > "$OUTDIR/fuzzingserver.port"
for _ in $(seq 1 100); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "autobahn: fuzzingserver exited early, see $OUTDIR/wstest.log" >&2
    tail -5 "$OUTDIR/wstest.log" >&2
    exit 1
  fi
  if grep -q "Ok, will run" "$OUTDIR/wstest.log" 2>/dev/null && \
     "$PY" -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $PORT)))"; then
    break
  fi
  sleep 0.2
done
echo "autobahn: fuzzingserver listening on ws://127.0.0.1:$PORT (cases: $CASES; exclude: ${EXCLUDE:-none}; timeout ${TIMEOUT}s)" >&2
echo "autobahn: stop with: $0 stop $OUTDIR" >&2
echo "$PID"

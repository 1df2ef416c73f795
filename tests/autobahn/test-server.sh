#!/usr/bin/env bash
# Test a WebSocket SERVER with Autobahn|Testsuite (wstest -m fuzzingclient).
#
# Usage: test-server.sh URL OUTDIR [CASES] [EXCLUDE]
#   URL      e.g. ws://127.0.0.1:9001
#   OUTDIR   report directory (index.html, index.json, per-case files, wstest.log)
#   CASES    comma list of case patterns, default '*'         (e.g. '1.*,2.*,9.1.1')
#   EXCLUDE  comma list of case patterns to skip, default none (e.g. '9.*,12.*,13.*')
# Env:
#   AGENT=name          agent name in the report (default: the server's Server header)
#   AB_TIMEOUT=seconds  bound on the whole wstest run (default 3600)
# Exit status: 1 when wstest failed or timed out, else that of summarize.py (0, or 2
#   when no report was produced). wstest exits 0 when the server stops accepting
#   connections mid-run and reports only the cases before: count them (cases.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# venv and unpacked suite: .autobahn/ at the repository root (setup.sh), or $AB_HOME
AB_HOME="${AB_HOME:-$(cd "$HERE/../.." && pwd)/.autobahn}"
if [ $# -lt 2 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
URL="$1"
OUTDIR="$2"
CASES="${3:-*}"
EXCLUDE="${4:-}"
TIMEOUT="${AB_TIMEOUT:-3600}"
WSTEST="$AB_HOME/.venv/bin/wstest"
PY="$AB_HOME/.venv/bin/python"
[ -x "$WSTEST" ] || { echo "wstest not installed; run $HERE/setup.sh" >&2; exit 2; }

mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
SPEC="$OUTDIR/fuzzingclient.json"
rm -f "$OUTDIR/index.json"

URL="$URL" OUTDIR="$OUTDIR" CASES="$CASES" EXCLUDE="$EXCLUDE" AGENT="${AGENT:-}" "$PY" - > "$SPEC" <<'EOF'
import json, os
split = lambda s: [x.strip() for x in s.split(",") if x.strip()]
server = {"url": os.environ["URL"]}
if os.environ.get("AGENT"):
    server["agent"] = os.environ["AGENT"]
print(json.dumps({"outdir": os.environ["OUTDIR"],
                  "servers": [server],
                  "cases": split(os.environ["CASES"]) or ["*"],
                  "exclude-cases": split(os.environ["EXCLUDE"]),
                  "exclude-agent-cases": {}}, indent=2))
EOF

echo "autobahn: fuzzingclient -> $URL (cases: $CASES; exclude: ${EXCLUDE:-none}; timeout ${TIMEOUT}s)"
START=$(date +%s)
set +e
(cd "$OUTDIR" && timeout -k 10 "$TIMEOUT" "$WSTEST" -m fuzzingclient -s "$SPEC" > "$OUTDIR/wstest.log" 2>&1)
RC=$?
set -e
END=$(date +%s)
echo "autobahn: wstest exited with $RC after $((END - START)) s (log: $OUTDIR/wstest.log)"
if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
  echo "autobahn: TIMEOUT after ${TIMEOUT}s - the report is only written when all cases finished" >&2
fi
SUM_RC=0
"$PY" "$HERE/summarize.py" "$OUTDIR" || SUM_RC=$?
# A wstest that failed is a failed run even if an (older or partial) report is readable.
[ "$RC" = 0 ] || exit 1
exit "$SUM_RC"

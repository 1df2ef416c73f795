#!/usr/bin/env bash
# Idempotent setup of the Python 3 port of Autobahn|Testsuite (wstest), inside the repository:
#   - venv at $AB_HOME/.venv with the pinned deps (requirements.txt)
#   - sdist autobahntestsuite==25.10.1 fetched with `pip download`, extracted
#     into $AB_HOME/work/, patched with py3.patch, installed (no deps)
#   - result: $AB_HOME/.venv/bin/wstest and the wrapper ./wstest
# AB_HOME defaults to .autobahn/ at the repository root (gitignored).
# Re-running is cheap: nothing is redone unless the pins, the patch or the tarball changed.
# Env: PYTHON (default python3, must be >= 3.9), AB_FORCE=1 to rebuild work/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AB_HOME="${AB_HOME:-$(cd "$HERE/../.." && pwd)/.autobahn}"; mkdir -p "$AB_HOME"
VENV="$AB_HOME/.venv"
WORK="$AB_HOME/work"
PATCH="$HERE/py3.patch"
REQS="$HERE/requirements.txt"
VERSION="25.10.1"
SRC="$WORK/autobahntestsuite-$VERSION"
PY="${PYTHON:-python3}"

log() { echo "[autobahn setup] $*"; }

# 1. virtualenv + pinned dependencies
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
REQ_SUM="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.reqs.sha256" 2>/dev/null || true)" != "$REQ_SUM" ]; then
  log "installing pinned requirements"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
  echo "$REQ_SUM" > "$VENV/.reqs.sha256"
fi

# 2. sdist -> work/, patched
mkdir -p "$WORK/dl"
TARBALL="$WORK/dl/autobahntestsuite-$VERSION.tar.gz"
if [ ! -f "$TARBALL" ]; then
  log "downloading autobahntestsuite==$VERSION (sdist)"
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
      --no-binary :all: "autobahntestsuite==$VERSION" -d "$WORK/dl"
fi
PATCH_SUM="$(sha256sum "$PATCH" "$TARBALL" | sha256sum | cut -d' ' -f1)"
STAMP="$SRC/.py3-port.sha256"
if [ "${AB_FORCE:-0}" = 1 ] || [ ! -x "$VENV/bin/wstest" ] || [ "$(cat "$STAMP" 2>/dev/null || true)" != "$PATCH_SUM" ]; then
  log "extracting and patching into $SRC"
  rm -rf "$SRC"
  tar -xzf "$TARBALL" -C "$WORK"
  (cd "$SRC" && patch -p1 -s --no-backup-if-mismatch < "$PATCH")
  find "$SRC" -name '*.pyc' -delete
  log "installing patched autobahntestsuite into venv"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
      --no-build-isolation --force-reinstall "$SRC" > "$WORK/pip-install.log" 2>&1; then
    cat "$WORK/pip-install.log" >&2
    log "ERROR: installing the patched sdist failed"
    exit 1
  fi
  echo "$PATCH_SUM" > "$STAMP"
fi

# 3. sanity check
"$VENV/bin/wstest" --autobahnversion
log "ok: $VENV/bin/wstest (wrapper: $HERE/wstest)"

#!/usr/bin/env bash
# Prepares the Python side of the interop tests: a repo-local venv with a pinned
# pyzmq (which bundles its own libzmq, so no system libzmq is needed).
# Safe to run repeatedly; it only does work when something is missing or wrong.
set -euo pipefail

PYZMQ_VERSION="27.3.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
BASE_PYTHON="${PYTHON:-python3}"

log() { printf 'setup-python: %s\n' "$*"; }

# A venv whose interpreter went away (e.g. the base Python was upgraded or the
# directory was copied from another machine) cannot be repaired in place.
if [ -d "$VENV" ] && ! "$PY" -c 'import sys' >/dev/null 2>&1; then
  log "existing $VENV is broken; recreating"
  rm -rf "$VENV"
fi

if [ -x "$PY" ]; then
  log "reusing venv $VENV ($("$PY" --version 2>&1))"
else
  log "creating venv $VENV with $("$BASE_PYTHON" --version 2>&1)"
  "$BASE_PYTHON" -m venv "$VENV"
fi

installed="$("$PY" -c 'import zmq; print(zmq.__version__)' 2>/dev/null || true)"
if [ "$installed" = "$PYZMQ_VERSION" ]; then
  log "pyzmq $PYZMQ_VERSION already installed; skipping pip"
else
  if [ -n "$installed" ]; then
    log "found pyzmq $installed; installing $PYZMQ_VERSION"
  else
    log "installing pyzmq $PYZMQ_VERSION"
  fi
  # --only-binary keeps CI from silently compiling libzmq from source when a
  # wheel is missing; failing loudly is better than a 10-minute surprise build.
  "$PY" -m pip install --disable-pip-version-check --no-input --quiet \
    --only-binary pyzmq "pyzmq==$PYZMQ_VERSION"
fi

"$PY" -c 'import zmq; print("setup-python: ready: pyzmq %s, libzmq %s at %s" % (zmq.__version__, zmq.zmq_version(), __import__("sys").executable))'

#!/usr/bin/env bash
# The end-to-end suites: brings the portal up exactly as `npm start` does (operator in
# demo mode), waits until the frontend and backend answer, runs the browser tests in
# e2e-tests/ with Debian's Chromium, and takes the portal down again.
# Expects the toolchain on PATH (scripts/ferry sources it).
set -euo pipefail
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$FERRY_ROOT"

APP_URL="${FERRY_APP_URL:-http://localhost:3000}"
BACKEND_URL="${FERRY_BACKEND_URL:-http://localhost:7007}"
# The dev server compiles the whole app before it answers; two minutes on two cores.
STARTUP_TIMEOUT_S="${FERRY_STARTUP_TIMEOUT_S:-420}"
LOG_DIR="$FERRY_ROOT/e2e-tests/artifacts"
mkdir -p "$LOG_DIR"

portal_pid=""
stop_portal() {
  if [ -n "$portal_pid" ]; then
    kill -TERM -- "-$portal_pid" 2>/dev/null || true
    wait "$portal_pid" 2>/dev/null || true
  fi
}
trap stop_portal EXIT

if curl -fsS -o /dev/null "$BACKEND_URL/.backstage/health/v1/readiness" 2>/dev/null; then
  echo "e2e: a portal is already running on $BACKEND_URL; stop it first so the suite tests a fresh one" >&2
  exit 1
fi

echo "e2e: starting the portal (log: e2e-tests/artifacts/portal.log)" >&2
set -m
bash "$FERRY_ROOT/scripts/ferry" start > "$LOG_DIR/portal.log" 2>&1 &
portal_pid=$!
set +m

started=$(date +%s)
until curl -fsS -o /dev/null "$BACKEND_URL/.backstage/health/v1/readiness" 2>/dev/null &&
  curl -fsS -o /dev/null "$APP_URL" 2>/dev/null; do
  if ! kill -0 "$portal_pid" 2>/dev/null; then
    echo "e2e: the portal exited during start-up; the end of its log:" >&2
    tail -n 40 "$LOG_DIR/portal.log" >&2
    exit 1
  fi
  if [ $(($(date +%s) - started)) -gt "$STARTUP_TIMEOUT_S" ]; then
    echo "e2e: the portal did not answer within ${STARTUP_TIMEOUT_S}s; the end of its log:" >&2
    tail -n 40 "$LOG_DIR/portal.log" >&2
    exit 1
  fi
  sleep 2
done
echo "e2e: portal up after $(($(date +%s) - started))s" >&2

cd "$FERRY_ROOT/e2e-tests"
FERRY_APP_URL="$APP_URL" FERRY_BACKEND_URL="$BACKEND_URL" FERRY_ARTIFACTS="$LOG_DIR" \
  node --test --test-concurrency=1 "$@" src/*.test.ts

#!/usr/bin/env bash
# The end-to-end suites: brings the portal up exactly as `npm start` does (operator in
# demo mode), waits until the frontend and backend answer, runs the browser tests in
# e2e-tests/ with Debian's Chromium, and takes the portal down again.
#
# `--cluster playground`: the same against real nodes instead: starts `npm run
# playground` (unless one runs), applies examples/playground's workloads, starts the
# portal as `npm start -- --cluster playground` does and runs e2e-tests/src/playground;
# a playground it started it stops again.
# Expects the toolchain on PATH (scripts/ferry sources it).
set -euo pipefail
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$FERRY_ROOT"

cluster=""
if [ "${1:-}" = --cluster ]; then
  cluster="${2:-}"
  shift 2
fi

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
playground_started=""
stop_all() {
  stop_portal
  if [ -n "$playground_started" ]; then
    bash "$FERRY_ROOT/scripts/ferry" playground down >&2 || true
  fi
}
trap stop_all EXIT

start_command=(bash "$FERRY_ROOT/scripts/ferry" start)
suites=(src/*.test.ts)
if [ "$cluster" = playground ]; then
  # shellcheck source=lib/controlplane.sh
  source "$FERRY_ROOT/scripts/lib/controlplane.sh"
  # FERRY_PLAYGROUND_DIR (scripts/lib/playground.sh) names another playground than a
  # person's own: npm test starts one of its own there.
  playground_dir="${FERRY_PLAYGROUND_DIR:-${FERRY_CACHE:-$HOME/.cache/ferry}/playground}"
  export FERRY_PLAYGROUND_DIR="$playground_dir"
  if [ "$(cat "$playground_dir/status" 2>/dev/null || true)" != ready ]; then
    echo "e2e: starting the playground" >&2
    playground_started=yes
    bash "$FERRY_ROOT/scripts/ferry" playground >/dev/null
  fi
  export KUBECONFIG="$playground_dir/kubeconfig"
  FERRY_KUBECTL="$(ferry_controlplane_bin_dir)/kubectl"
  export FERRY_KUBECTL
  # A playground that ran the suite before starts it from scratch: its drained node
  # takes pods again, and the workloads (their SpotPolicies and Migrations with them)
  # are created anew, not opted in yet.
  "$FERRY_KUBECTL" uncordon --selector karpenter.sh/capacity-type >&2
  "$FERRY_KUBECTL" delete --ignore-not-found --wait --timeout=180s -f "$FERRY_ROOT/examples/playground/workloads.yaml" >&2
  "$FERRY_KUBECTL" apply -f "$FERRY_ROOT/examples/playground/workloads.yaml" >&2
  "$FERRY_KUBECTL" rollout status --timeout=300s -n assistants deployment/agent-memory >&2
  start_command+=(--cluster playground)
  suites=(src/playground/*.test.ts)
elif [ -n "$cluster" ]; then
  echo "e2e: --cluster takes 'playground', not '$cluster'" >&2
  exit 2
fi

if curl -fsS -o /dev/null "$BACKEND_URL/.backstage/health/v1/readiness" 2>/dev/null; then
  echo "e2e: a portal is already running on $BACKEND_URL; stop it first so the suite tests a fresh one" >&2
  exit 1
fi

echo "e2e: starting the portal (log: e2e-tests/artifacts/portal.log)" >&2
set -m
"${start_command[@]}" > "$LOG_DIR/portal.log" 2>&1 &
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
if ! FERRY_APP_URL="$APP_URL" FERRY_BACKEND_URL="$BACKEND_URL" FERRY_ARTIFACTS="$LOG_DIR" \
  node --test --test-concurrency=1 "$@" "${suites[@]}"; then
  # What the portal said last, for a failure that a rerun does not show.
  if ! kill -0 "$portal_pid" 2>/dev/null; then echo "e2e: the portal had exited" >&2; fi
  echo "e2e: the browser tests failed; the end of the portal's log:" >&2
  tail -n 80 "$LOG_DIR/portal.log" >&2
  exit 1
fi

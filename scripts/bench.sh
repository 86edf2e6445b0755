#!/usr/bin/env bash
# Runs one benchmark: `npm run bench -- <name> [args]`. A benchmark is a file
# `bench/<name>.ts` in one of the workspaces (operator/, plugins/*, e2e-tests/); it
# prints its figures and writes bench/results/<name>.json at the repository root.
set -euo pipefail
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="${1:-}"
shift || true
list() { ls "$FERRY_ROOT"/{operator,plugins/*,e2e-tests}/bench/*.ts 2>/dev/null | sed -E 's#.*/bench/([^/]+)\.ts$#\1#' | sort -u | tr '\n' ' '; }
if [ -z "$name" ]; then
  echo "usage: npm run bench -- <name> [args]; benchmarks: $(list)" >&2
  exit 2
fi
file="$(ls "$FERRY_ROOT"/{operator,plugins/*,e2e-tests}/bench/"$name".ts 2>/dev/null | head -n 1 || true)"
if [ -z "$file" ]; then
  echo "no benchmark named '$name'; benchmarks: $(list)" >&2
  exit 2
fi
mkdir -p "$FERRY_ROOT/bench/results"
export FERRY_BENCH_RESULTS="$FERRY_ROOT/bench/results"
cd "$(dirname "$(dirname "$file")")"
exec "$FERRY_ROOT/node_modules/.bin/tsx" "$file" "$@"

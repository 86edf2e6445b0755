# shellcheck shell=bash
# Ferry's OCI runtime wrapper (operator/runtime, Go, standard library only), built
# with the machine's Go into $FERRY_CACHE/runtime/<fingerprint>/ferry-runtime, once
# per source change. Call `ferry_runtime`, which prints the binary's path on stdout.
# Nodes name it as the runtime handler `ferry` (operator/chart/README.md).

FERRY_ROOT="${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
FERRY_RUNTIME_MODULE="$FERRY_ROOT/operator/runtime"

if ! declare -F ferry_log >/dev/null; then
  ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }
fi

ferry_runtime_fingerprint() {
  {
    cat "$FERRY_RUNTIME_MODULE"/go.mod "$FERRY_RUNTIME_MODULE"/*.go
    go env GOVERSION GOOS GOARCH
  } | sha256sum | cut -c1-16
}

ferry_runtime() {
  if ! command -v go >/dev/null; then
    ferry_log "Ferry's runtime wrapper is built with Go, and there is no 'go' on PATH"
    return 1
  fi
  local dir
  dir="$FERRY_CACHE/runtime/$(ferry_runtime_fingerprint)"
  if [ ! -x "$dir/ferry-runtime" ]; then
    mkdir -p "$FERRY_CACHE/runtime"
    (
      flock 9
      [ -x "$dir/ferry-runtime" ] && exit 0
      rm -rf "$dir.partial"
      mkdir -p "$dir.partial"
      # Static: the nodes' containerd runs it from its shim, whatever libc the node has.
      (cd "$FERRY_RUNTIME_MODULE" &&
        CGO_ENABLED=0 GOFLAGS="$(go env GOFLAGS) -trimpath" \
          nice -n 10 go build -ldflags "-s -w" -o "$dir.partial/ferry-runtime" .) >&2 || exit 1
      mv "$dir.partial" "$dir"
    ) 9>"$FERRY_CACHE/runtime/build.lock" || {
      ferry_log "building the runtime wrapper failed (see above)"
      return 1
    }
  fi
  printf '%s\n' "$dir/ferry-runtime"
}

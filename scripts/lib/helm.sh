# shellcheck shell=bash
# Helm, for the tests that install operator/chart into the local control plane.
# Debian's stable release does not package Helm, so it is built from the Go module
# proxy (`go install`) into $FERRY_CACHE/helm/<version>/bin, once. Call `ferry_helm`,
# which prints the path of the helm binary on stdout.

FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
FERRY_HELM_VERSION=v3.22.0

if ! declare -F ferry_log >/dev/null; then
  ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }
fi

ferry_helm() {
  local bin="$FERRY_CACHE/helm/$FERRY_HELM_VERSION/bin"
  if [ -x "$bin/helm" ]; then
    printf '%s\n' "$bin/helm"
    return
  fi
  if ! command -v go >/dev/null; then
    ferry_log "Helm is built with Go, and there is no 'go' on PATH"
    return 1
  fi
  mkdir -p "$bin"
  (
    flock 9
    if [ -x "$bin/helm" ]; then exit 0; fi
    ferry_log "building Helm $FERRY_HELM_VERSION into $bin"
    local started=$SECONDS
    # Niced: the machine is shared. GOPROXY and the rest come from `go env`.
    CGO_ENABLED=0 GOFLAGS="$(go env GOFLAGS) -trimpath" GOBIN="$bin.partial" \
      nice -n 19 go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$FERRY_HELM_VERSION" \
      "helm.sh/helm/v3/cmd/helm@$FERRY_HELM_VERSION" >&2 || exit 1
    mv "$bin.partial/helm" "$bin/helm"
    rmdir "$bin.partial"
    ferry_log "Helm built in $((SECONDS - started)) s"
  ) 9>"$FERRY_CACHE/helm/build.lock" || return 1
  printf '%s\n' "$bin/helm"
}

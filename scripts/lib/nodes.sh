# shellcheck shell=bash
# What a real node runs beside the kubelet and kube-proxy (which scripts/lib/controlplane.sh
# builds from the control plane's own module): containerd with its runc shim and `ctr`,
# runc, the CNI plugins bridge, host-local, loopback and portmap, and CoreDNS for the
# cluster's Service names. Each is built from source with the machine's Go toolchain and
# the Go module proxy it is configured with (`go env GOPROXY`), niced, into
# $FERRY_CACHE/nodes/bin, once: a second call finds them and does nothing.
#
# Sourced by scripts/ferry; call `ferry_node_binaries`, which prints the bin directory on
# stdout. runc is built with cgo and seccomp, so libseccomp-dev comes from Debian through
# ferry_system_packages.

FERRY_ROOT="${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# The versions that ran on this machine (../shared/NOTES.md); bump together after re-checking.
FERRY_CONTAINERD_VERSION=v2.2.10
FERRY_RUNC_VERSION=v1.5.3
FERRY_CNI_PLUGINS_VERSION=v1.9.1
FERRY_COREDNS_VERSION=v1.14.7
FERRY_NODE_COMMANDS=(containerd containerd-shim-runc-v2 ctr runc bridge host-local loopback portmap coredns)

if ! declare -F ferry_log >/dev/null; then
  ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }
fi

ferry_node_bin_dir() {
  printf '%s/nodes/bin' "$FERRY_CACHE"
}

# What decides the binaries' content: a change rebuilds them.
ferry_node_fingerprint() {
  {
    echo "containerd $FERRY_CONTAINERD_VERSION runc $FERRY_RUNC_VERSION"
    echo "cni $FERRY_CNI_PLUGINS_VERSION coredns $FERRY_COREDNS_VERSION"
    go env GOVERSION GOOS GOARCH
  } | sha256sum | cut -d' ' -f1
}

ferry_node_ready() {
  local bin="$1" command
  for command in "${FERRY_NODE_COMMANDS[@]}"; do
    [ -x "$bin/$command" ] || return 1
  done
  [ -f "$bin/.fingerprint" ] && [ "$(cat "$bin/.fingerprint")" = "$(ferry_node_fingerprint)" ]
}

ferry_node_binaries() {
  if ! command -v go >/dev/null; then
    ferry_log "the node binaries are built with Go, and there is no 'go' on PATH"
    return 1
  fi
  local bin
  bin="$(ferry_node_bin_dir)"
  if ferry_node_ready "$bin"; then
    printf '%s\n' "$bin"
    return
  fi
  # runc's seccomp filter links libseccomp (cgo).
  if declare -F ferry_system_packages >/dev/null; then
    ferry_system_packages libseccomp-dev pkg-config gcc libc6-dev || return 1
  fi
  mkdir -p "$(dirname "$bin")"
  # Two builds at once would each take the machine for nothing: take turns, and the
  # second finds the first one's binaries.
  (
    flock 9
    if ferry_node_ready "$bin"; then exit 0; fi
    ferry_node_build "$bin"
  ) 9>"$(dirname "$bin")/build.lock" || return 1
  printf '%s\n' "$bin"
}

ferry_node_build() {
  local bin="$1"
  local staging
  staging="$(dirname "$bin")/bin.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  ferry_log "building the node binaries (containerd $FERRY_CONTAINERD_VERSION, runc $FERRY_RUNC_VERSION, CNI plugins $FERRY_CNI_PLUGINS_VERSION, CoreDNS $FERRY_COREDNS_VERSION) into $bin"
  local started=$SECONDS
  local containerd=github.com/containerd/containerd/v2
  local cni=github.com/containernetworking/plugins/plugins
  # Builds are niced: the machine is shared, and tests running beside a build must keep
  # their timing. GOPROXY and GOFLAGS' other settings come from `go env`.
  (
    export GOFLAGS="$(go env GOFLAGS) -trimpath" GOBIN="$staging"
    # The version each binary reports comes from these variables (their Makefiles set them).
    CGO_ENABLED=0 nice -n 19 go install \
      -ldflags "-s -w -X $containerd/version.Version=$FERRY_CONTAINERD_VERSION" \
      "$containerd/cmd/containerd@$FERRY_CONTAINERD_VERSION" \
      "$containerd/cmd/containerd-shim-runc-v2@$FERRY_CONTAINERD_VERSION" \
      "$containerd/cmd/ctr@$FERRY_CONTAINERD_VERSION" &&
      ferry_log "containerd built after $((SECONDS - started)) s" &&
      CGO_ENABLED=1 nice -n 19 go install -tags seccomp \
        -ldflags "-s -w -X main.version=${FERRY_RUNC_VERSION#v}" \
        "github.com/opencontainers/runc@$FERRY_RUNC_VERSION" &&
      ferry_log "runc built after $((SECONDS - started)) s" &&
      CGO_ENABLED=0 nice -n 19 go install -ldflags "-s -w" \
        "$cni/main/bridge@$FERRY_CNI_PLUGINS_VERSION" \
        "$cni/main/loopback@$FERRY_CNI_PLUGINS_VERSION" \
        "$cni/ipam/host-local@$FERRY_CNI_PLUGINS_VERSION" \
        "$cni/meta/portmap@$FERRY_CNI_PLUGINS_VERSION" &&
      ferry_log "CNI plugins built after $((SECONDS - started)) s" &&
      CGO_ENABLED=0 nice -n 19 go install -ldflags "-s -w" \
        "github.com/coredns/coredns@$FERRY_COREDNS_VERSION" &&
      ferry_log "CoreDNS built after $((SECONDS - started)) s"
  ) >&2 || {
    ferry_log "the node binaries' build failed (see above); nothing was cached"
    rm -rf "$staging"
    return 1
  }
  ferry_node_fingerprint >"$staging/.fingerprint"
  rm -rf "$bin"
  mv "$staging" "$bin"
  ferry_log "node binaries built in $((SECONDS - started)) s"
}

# The operator's tests on real nodes (operator/test/nodes/*.test.ts), one suite at a
# time: each starts a control plane and three nodes, and the machine has two cores.
# Arguments go to Jest, e.g. `ferry_nodes_test --testPathPatterns realNodes`.
ferry_nodes_test() {
  # shellcheck source=controlplane.sh
  source "$FERRY_ROOT/scripts/lib/controlplane.sh"
  # shellcheck source=images.sh
  source "$FERRY_ROOT/scripts/lib/images.sh"
  # shellcheck source=helm.sh
  source "$FERRY_ROOT/scripts/lib/helm.sh"
  ferry_controlplane_binaries >/dev/null || return 1
  # The chart's suites install operator/chart with Helm.
  local helm
  helm="$(ferry_helm)" || return 1
  local bin
  bin="$(ferry_node_binaries)" || return 1
  # The nodes' runc checkpoints through CRIU, and kube-proxy programs nftables with `nft`.
  ferry_criu || return 1
  # The pods' images, from Ferry's own builder (scripts/lib/images.sh): never pulled.
  local images
  images="$(ferry_images pause valkey-9.1)" || return 1
  local run=(env FERRY_HELM="$helm" FERRY_NODE_BIN="$bin" FERRY_NODE_IMAGES="$images" CI=true
    yarn backstage-cli package test --roots="$FERRY_ROOT/operator/test/nodes" --runInBand)
  (cd "$FERRY_ROOT/operator" && "${run[@]}" "$@")
}

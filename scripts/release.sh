#!/usr/bin/env bash
# Ferry's release steps. `npm run release -- pack [dir]` builds the packages an adopter
# installs and writes their tarballs (what `npm publish` would upload) to dir
# (default dist-release/): the three plugin packages and the node library, which a
# production portal installs, and the demo module with the operator it runs, which it
# leaves out. Expects the toolchain on PATH (scripts/ferry sources it).
set -euo pipefail
FERRY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$FERRY_ROOT"

# Workspace directories, in dependency order, and their role in a release.
FERRY_PUBLISHED_PACKAGES=(plugins/ferry-common plugins/ferry-node plugins/ferry plugins/ferry-backend)
FERRY_DEMO_PACKAGES=(operator plugins/ferry-backend-module-demo)

release_pack() {
  local out="${1:-$FERRY_ROOT/dist-release}"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  rm -f "$out"/*.tgz
  # backstage-cli package build reads the declarations tsc writes to dist-types/.
  yarn tsc
  local dir
  for dir in "${FERRY_PUBLISHED_PACKAGES[@]}" "${FERRY_DEMO_PACKAGES[@]}"; do
    (cd "$dir" && yarn backstage-cli package build >&2)
  done
  for dir in "${FERRY_PUBLISHED_PACKAGES[@]}" "${FERRY_DEMO_PACKAGES[@]}"; do
    # prepack/postpack (backstage-cli package prepack) point the manifest at dist/;
    # yarn pack replaces workspace: ranges with the versions.
    (cd "$dir" && yarn pack --out "$out/%s-%v.tgz" >&2)
  done
  # Scoped names give file names with an @ and a slash-free scope; drop the @.
  local file
  for file in "$out"/@*.tgz; do
    [ -e "$file" ] && mv "$file" "$out/$(basename "$file" | sed 's/^@//')"
  done
  ls -1 "$out"/*.tgz
}

command="${1:-}"
shift || true
case "$command" in
  pack) release_pack "$@" ;;
  *)
    echo "usage: npm run release -- pack [dir]   (builds and packs Ferry's packages into dir, default dist-release/)" >&2
    exit 2
    ;;
esac

# shellcheck shell=bash
# Valkey and Redis servers from Debian, unpacked (scripts/lib/debian.sh), for the
# migration suites and benchmark (host-runnable, through the tree's own loader where
# its glibc is newer than the machine's) and for Ferry's images (scripts/lib/images.sh,
# which makes root filesystems of the same trees).
#
#   ferry_valkey_tree 9.1|8.1|redis-7   unpacks once and prints the tree's directory
#   ferry_valkey_command 9.1|8.1|redis-7 [PROGRAM]
#                                       prints a command line that runs PROGRAM
#                                       (default valkey-server, or redis-server for
#                                       redis-7; also valkey-cli, valkey-benchmark…)
#
# Each tree holds the server, its tools and every library they link, down to libc, so
# that it is a complete root filesystem for an image as well, plus a static busybox
# (the images' `sh` and `sleep infinity`).

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# Which Debian suite each release comes from (Redis 7 is Debian 12's; 13 has Redis 8); the
# version is checked after unpacking.
declare -A FERRY_VALKEY_SUITES=([9.1]=unstable [8.1]=trixie [redis-7]=bookworm)
# The libraries valkey-server/valkey-tools (and redis-server/redis-tools) link, with their
# own dependencies, as the suites resolve them; `ferry_valkey_check` proves the list whole.
FERRY_VALKEY_LIBRARY_DEBS=(libc6 libgcc-s1 libstdc++6 libatomic1 libjemalloc2 liblzf1 libsystemd0
  libcap2 libzstd1 zlib1g)
declare -A FERRY_VALKEY_DEBS=(
  [9.1]="valkey-server valkey-tools libssl3t64 busybox-static ${FERRY_VALKEY_LIBRARY_DEBS[*]}"
  [8.1]="valkey-server valkey-tools libssl3t64 busybox-static ${FERRY_VALKEY_LIBRARY_DEBS[*]}"
  # bookworm's libsystemd0 links more than the newer suites' does.
  [redis-7]="redis-server redis-tools libssl3 busybox-static libgcrypt20 libgpg-error0 liblz4-1 liblzma5 ${FERRY_VALKEY_LIBRARY_DEBS[*]}"
)

declare -F ferry_log >/dev/null || ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }

ferry_valkey_release_known() {
  if [ -z "${FERRY_VALKEY_SUITES[$1]:-}" ]; then
    ferry_log "unknown Valkey release '$1'; known: ${!FERRY_VALKEY_SUITES[*]}"
    return 1
  fi
}

ferry_valkey_tree() {
  local release="$1"
  ferry_valkey_release_known "$release" || return 1
  local dir="$FERRY_CACHE/valkey-$release"
  if [ "$release" = redis-7 ]; then dir="$FERRY_CACHE/redis-7"; fi
  # shellcheck disable=SC2086 # the package list is words
  ferry_debian_unpack "${FERRY_VALKEY_SUITES[$release]}" "$dir" ${FERRY_VALKEY_DEBS[$release]} || return 1
  local server=valkey-server want="${release}."
  if [ "$release" = redis-7 ]; then server=redis-server want='5:7.'; fi
  if [[ "$(ferry_debian_version "$dir" "$server")" != "$want"* ]]; then
    ferry_log "Debian ${FERRY_VALKEY_SUITES[$release]} no longer carries $server $release: $(ferry_debian_version "$dir" "$server")"
    return 1
  fi
  printf '%s\n' "$dir"
}

ferry_valkey_command() {
  local release="$1" program="${2:-}"
  local dir
  dir="$(ferry_valkey_tree "$release")" || return 1
  if [ -z "$program" ]; then
    program=valkey-server
    if [ "$release" = redis-7 ]; then program=redis-server; fi
  fi
  if [ ! -x "$dir/usr/bin/$program" ]; then
    ferry_log "no $program in $dir: $(ls "$dir/usr/bin" | tr '\n' ' ')"
    return 1
  fi
  ferry_debian_command "$dir" "usr/bin/$program"
}

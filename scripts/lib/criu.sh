# shellcheck shell=bash
# CRIU for the checkpoint driver's tests and benchmark.
#
# Debian stable's CRIU (3.17) fails on this kernel ("Unexpected rt vDSO area bounds")
# and 4.1.1 cannot dump a listening TCP socket; Debian unstable's 4.2.1 works. It needs
# a newer glibc than the machine has, so the packages are unpacked into a private
# directory and `criu` runs through that directory's own dynamic loader. The newer libc
# is never installed system-wide, and the system's apt state is never touched
# (scripts/lib/debian.sh says how).
#
# `ferry_criu` is idempotent and offline once the cache is filled. It exports
#   FERRY_CRIU      a command line (loader, library path, criu binary) to run criu
#   FERRY_CRIU_DIR  the unpacked tree
# Sourced by scripts/ferry; needs root (CRIU itself needs it too).

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# The CRIU release that works on this kernel; bump both together after re-checking.
FERRY_CRIU_VERSION=4.2.1
FERRY_CRIU_SUITE=unstable
# What criu 4.2.1 from unstable needs beyond the machine's own libraries.
FERRY_CRIU_DEBS=(criu libcompel1 libnet9 libnl-3-200 libc6 libgcc-s1 libgnutls30t64
  libhogweed6t64 libnettle8t64 libp11-kit0 libunistring5 libgmp10 libzstd1 libstdc++6)
# Libraries whose stable versions are new enough; installed with apt from the machine's suite.
FERRY_CRIU_SYSTEM_DEBS=(libnftables1 libprotobuf-c1 libbsd0)
# The node agent's own needs next to CRIU: `nft`, to answer clients of a frozen process
# with ICMP host-unreachable instead of silence (src/agent/NodeAgent.ts says why).
FERRY_AGENT_SYSTEM_DEBS=(nftables)

declare -F ferry_log >/dev/null || ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }

ferry_criu_command() {
  ferry_debian_command "$1" usr/sbin/criu
}

ferry_criu() {
  local dir="$FERRY_CACHE/criu-$FERRY_CRIU_VERSION"
  if [ ! -x "$dir/usr/sbin/criu" ] || [ ! -f "$dir/.complete" ]; then
    ferry_criu_fetch "$dir" || return 1
  fi
  local command
  command="$(ferry_criu_command "$dir")"
  # Captured, not piped into `grep -q`: under pipefail an early-exiting grep can fail the check.
  if [[ "$($command --version 2>/dev/null || true)" != *"$FERRY_CRIU_VERSION"* ]]; then
    # The unpacked tree is there but does not run: usually the system libraries are missing.
    if [ "$(id -u)" -eq 0 ] && declare -F ferry_system_packages >/dev/null; then
      ferry_system_packages "${FERRY_CRIU_SYSTEM_DEBS[@]}" || return 1
    fi
    if [[ "$($command --version 2>/dev/null || true)" != *"$FERRY_CRIU_VERSION"* ]]; then
      ferry_log "criu in $dir does not run: $($command --version 2>&1 || true)"
      return 1
    fi
  fi
  if [ "$(id -u)" -eq 0 ] && declare -F ferry_system_packages >/dev/null; then
    ferry_system_packages "${FERRY_AGENT_SYSTEM_DEBS[@]}" || return 1
  fi
  export FERRY_CRIU_DIR="$dir"
  export FERRY_CRIU="$command"
}

ferry_criu_fetch() {
  local dir="$1"
  if [ "$(id -u)" -ne 0 ]; then
    ferry_log "CRIU needs root to download and to run; run as root"
    return 1
  fi
  if declare -F ferry_system_packages >/dev/null; then
    ferry_system_packages "${FERRY_CRIU_SYSTEM_DEBS[@]}" || return 1
  fi
  ferry_debian_unpack "$FERRY_CRIU_SUITE" "$dir" "${FERRY_CRIU_DEBS[@]}" || return 1
  if [[ "$(ferry_debian_version "$dir" criu)" != "$FERRY_CRIU_VERSION"* ]]; then
    ferry_log "Debian $FERRY_CRIU_SUITE no longer carries criu $FERRY_CRIU_VERSION: $(cat "$dir/.packages")"
  fi
}

# shellcheck shell=bash
# CRIU for the checkpoint driver's tests and benchmark.
#
# Debian stable's CRIU (3.17) fails on this kernel ("Unexpected rt vDSO area bounds")
# and 4.1.1 cannot dump a listening TCP socket; Debian unstable's 4.2.1 works. It needs
# a newer glibc than the machine has, so the packages are unpacked into a private
# directory and `criu` runs through that directory's own dynamic loader. The newer libc
# is never installed system-wide, and the system's apt state is never touched: apt runs
# with its own source list and lists in a temporary directory, pointed at the machine's
# own Debian mirror (read from its apt sources, never written anywhere that stays).
#
# `ferry_criu` is idempotent and offline once the cache is filled. It exports
#   FERRY_CRIU      a command line (loader, library path, criu binary) to run criu
#   FERRY_CRIU_DIR  the unpacked tree
# Sourced by scripts/ferry; needs root (CRIU itself needs it too).

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

# The machine's Debian mirror, from its apt sources (deb822 `.sources` or one-line `.list`).
ferry_debian_mirror() {
  local file uri=''
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    uri="$(awk '/^URIs:/ && $2 !~ /security/ && $2 ~ /debian/ { print $2; exit }' "$file")"
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\// && $i ~ /debian/ && $i !~ /security/) { print $i; exit } }' || true)"
  fi
  printf '%s' "${uri%/}"
}

ferry_criu_command() {
  local dir="$1"
  local lib="$dir/usr/lib/x86_64-linux-gnu:$dir/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu"
  printf '%s' "$dir/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path $lib $dir/usr/sbin/criu"
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
  local mirror
  mirror="$(ferry_debian_mirror)"
  if [ -z "$mirror" ]; then
    ferry_log "no Debian mirror found in /etc/apt/sources.list.d; cannot fetch CRIU $FERRY_CRIU_VERSION"
    return 1
  fi
  ferry_log "fetching CRIU $FERRY_CRIU_VERSION from Debian $FERRY_CRIU_SUITE into $dir"
  local work
  work="$(mktemp -d)"
  # The temporary apt state holds the mirror's name; it goes with the directory.
  # shellcheck disable=SC2064
  trap "rm -rf '$work'; trap - RETURN" RETURN
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs" "$work/sources.list.d"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "$mirror" "$FERRY_CRIU_SUITE" >"$work/sources.list"
  local apt_options=(
    -o "Dir::Etc::sourcelist=$work/sources.list"
    -o "Dir::Etc::sourceparts=$work/sources.list.d"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work"
    -o "Dir::Cache::archives=$work/archives"
    -o "APT::Get::List-Cleanup=0"
    -o "Debug::NoLocking=1"
    # The private directory is root's alone; apt's download sandbox user cannot write it.
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_options[@]}" update -qq >&2 || return 1
  (cd "$work/debs" && apt-get "${apt_options[@]}" download -qq "${FERRY_CRIU_DEBS[@]}" >&2) || return 1
  local staging="$dir.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  local deb
  for deb in "$work"/debs/*.deb; do
    dpkg -x "$deb" "$staging" || return 1
  done
  if ! ls "$work"/debs/criu_"$FERRY_CRIU_VERSION"* >/dev/null 2>&1; then
    ferry_log "Debian $FERRY_CRIU_SUITE no longer carries criu $FERRY_CRIU_VERSION: $(ls "$work"/debs)"
  fi
  touch "$staging/.complete"
  rm -rf "$dir"
  mv "$staging" "$dir"
}

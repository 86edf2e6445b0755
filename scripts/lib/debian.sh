# shellcheck shell=bash
# Debian packages from any suite, unpacked into a private directory instead of installed.
#
# Some of what Ferry needs exists only in a newer Debian suite than the machine runs
# (CRIU 4.2.1 and Valkey 9.1 from unstable, Valkey 8.1 from trixie), and the images Ferry
# builds are root filesystems made of Debian packages. Neither may touch the system: apt
# runs with its own source list and lists in a temporary directory, pointed at the
# machine's own Debian mirror (read from its apt sources, never written anywhere that
# stays), downloads the `.deb` files, and `dpkg -x` unpacks them. Binaries built against
# a newer glibc than the machine's run through the unpacked tree's own dynamic loader
# (`ferry_debian_command`).
#
# `ferry_debian_unpack` is idempotent and offline once the directory is complete.
# Needs root (apt's download sandbox and the shared cache are root's).

FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
# Where the packages' libraries land in an unpacked tree (amd64 only, as is the machine).
FERRY_DEBIAN_MULTIARCH=x86_64-linux-gnu

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

# ferry_debian_unpack SUITE DIR PACKAGE...
# Unpacks the named packages (exactly those: no dependency resolution, so the caller's
# list says what a tree holds) from Debian SUITE into DIR. DIR/.packages lists what was
# unpacked, one `name version` a line; DIR/.complete marks a finished tree. A finished
# tree with the same request is left alone; a different request replaces it.
ferry_debian_unpack() {
  local suite="$1" dir="$2"
  shift 2
  local request="$suite $*"
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.request" 2>/dev/null)" = "$request" ]; then
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    ferry_log "unpacking Debian packages needs root (apt's download); run as root"
    return 1
  fi
  mkdir -p "$(dirname "$dir")"
  # Two callers at once would unpack into the same staging directory: take turns.
  (
    flock 9
    if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.request" 2>/dev/null)" = "$request" ]; then
      exit 0
    fi
    ferry_debian_fetch "$suite" "$dir" "$@"
  ) 9>"$dir.lock"
}

ferry_debian_fetch() {
  local suite="$1" dir="$2"
  shift 2
  local mirror
  mirror="$(ferry_debian_mirror)"
  if [ -z "$mirror" ]; then
    ferry_log "no Debian mirror found in /etc/apt/sources.list(.d); cannot fetch $* from $suite"
    return 1
  fi
  ferry_log "fetching $* from Debian $suite into $dir"
  local work
  work="$(mktemp -d)"
  # The temporary apt state holds the mirror's name; it goes with the directory.
  # shellcheck disable=SC2064
  trap "rm -rf '$work'; trap - RETURN" RETURN
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/debs" "$work/sources.list.d"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "$mirror" "$suite" >"$work/sources.list"
  local apt_options=(
    -o "Dir::Etc::sourcelist=$work/sources.list"
    -o "Dir::Etc::sourceparts=$work/sources.list.d"
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::State::status=/dev/null"
    -o "Dir::Cache=$work"
    -o "Dir::Cache::archives=$work/archives"
    -o "APT::Get::List-Cleanup=0"
    -o "Debug::NoLocking=1"
    # The private directory is root's alone; apt's download sandbox user cannot write it.
    -o "APT::Sandbox::User=root"
  )
  apt-get "${apt_options[@]}" update -qq >&2 || return 1
  (cd "$work/debs" && apt-get "${apt_options[@]}" download -qq "$@" >&2) || return 1
  local staging="$dir.partial"
  rm -rf "$staging"
  mkdir -p "$staging"
  local deb
  for deb in "$work"/debs/*.deb; do
    dpkg -x "$deb" "$staging" || return 1
    dpkg-deb -f "$deb" Package Version | awk '{ v[NR] = $2 } END { print v[1], v[2] }' >>"$staging/.packages"
  done
  printf '%s %s' "$suite" "$*" >"$staging/.request"
  touch "$staging/.complete"
  rm -rf "$dir"
  mv "$staging" "$dir"
}

# The version of PACKAGE in an unpacked tree (from its .packages), or nothing.
ferry_debian_version() {
  local dir="$1" package="$2"
  awk -v p="$package" '$1 == p { print $2; exit }' "$dir/.packages" 2>/dev/null
}

# ferry_debian_command DIR BINARY
# A command line that runs BINARY (a path inside DIR, e.g. usr/bin/valkey-server) on this
# machine through the tree's own dynamic loader and libraries, falling back to the
# machine's libraries for what the tree does not hold.
ferry_debian_command() {
  local dir="$1" binary="$2"
  local multiarch="$FERRY_DEBIAN_MULTIARCH"
  local lib="$dir/usr/lib/$multiarch:$dir/lib/$multiarch:/lib/$multiarch:/usr/lib/$multiarch"
  # Suites from trixie on ship the loader under /usr (merged /usr); bookworm under /lib.
  local loader="$dir/usr/lib/$multiarch/ld-linux-x86-64.so.2"
  [ -e "$loader" ] || loader="$dir/lib/$multiarch/ld-linux-x86-64.so.2"
  printf '%s' "$loader --library-path $lib $dir/${binary#/}"
}

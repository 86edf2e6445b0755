# shellcheck shell=bash
# Debian packages the test suites need (chromium, redis-server, postgresql, …),
# installed with apt from the machine's own sources when they are missing.

ferry_system_packages() {
  local missing=()
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    ferry_log "these Debian packages are missing: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
    return 1
  fi
  ferry_log "installing Debian packages: ${missing[*]}"
  # Package lists may be missing or stale on a fresh machine; refresh them once.
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

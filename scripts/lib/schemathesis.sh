# shellcheck shell=bash
# Schemathesis, which tests the backend's served OpenAPI contract in `npm test`.
# It is a Python tool from PyPI: installed once into a virtual environment of
# Debian's python3 under $FERRY_CACHE/schemathesis/<version>. pip reads its index
# from its own configuration, as on the rest of the machine. Call
# `ferry_schemathesis`, which prints the path of the `st` command on stdout.

FERRY_CACHE="${FERRY_CACHE:-$HOME/.cache/ferry}"
FERRY_SCHEMATHESIS_VERSION=4.32.5

if ! declare -F ferry_log >/dev/null; then
  ferry_log() { printf '\033[1mferry:\033[0m %s\n' "$*" >&2; }
fi

ferry_schemathesis() {
  local dir="$FERRY_CACHE/schemathesis/$FERRY_SCHEMATHESIS_VERSION"
  # Written last: a venv whose install was cut short is made again.
  if [ -f "$dir/.installed" ]; then
    printf '%s\n' "$dir/bin/st"
    return
  fi
  ferry_system_packages python3 python3-venv || return 1
  mkdir -p "$FERRY_CACHE/schemathesis"
  (
    flock 9
    if [ -f "$dir/.installed" ]; then exit 0; fi
    ferry_log "installing schemathesis $FERRY_SCHEMATHESIS_VERSION into $dir"
    rm -rf "$dir"
    # Debian's interpreter, not whichever python3 is first on PATH: the venv must
    # outlive a switch of pyenv or conda.
    /usr/bin/python3 -m venv "$dir" >&2 &&
      nice -n 10 "$dir/bin/pip" install --quiet "schemathesis==$FERRY_SCHEMATHESIS_VERSION" >&2 &&
      touch "$dir/.installed" || {
      rm -rf "$dir"
      exit 1
    }
  ) 9>"$FERRY_CACHE/schemathesis/install.lock" || return 1
  printf '%s\n' "$dir/bin/st"
}

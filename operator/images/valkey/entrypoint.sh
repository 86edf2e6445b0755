#!/bin/sh
# The Valkey image's entrypoint, as the official image's: options alone run the server,
# and protected mode is off (a container's clients come from other pods, not loopback;
# the official image patches the default instead). A configuration file stays the first
# argument, as valkey-server requires; later options override earlier ones.
set -e
case "$1" in -* | *.conf) set -- valkey-server "$@" ;; esac
case "$1" in
  valkey-server | redis-server)
    server="$1"
    shift
    case "${1:-}" in
      *.conf)
        conf="$1"
        shift
        set -- "$server" "$conf" --protected-mode no "$@"
        ;;
      *) set -- "$server" --protected-mode no "$@" ;;
    esac
    ;;
esac
exec "$@"

#!/bin/sh
# Makes a directory of unpacked Debian packages (`dpkg -x`) a container's root filesystem.
# Ferry's image builder (operator/src/images/build.ts) and the Containerfiles both run it,
# so an image built either way holds the same files.
#   rootfs.sh DIR
set -eu
root="$1"

# Merged /usr, as Debian has it from trixie on: packages of older suites ship /bin and
# /lib, newer ones only /usr/bin and /usr/lib, and the ELF interpreter is /lib64/….
for dir in bin sbin lib lib64; do
  if [ -d "$root/$dir" ] && [ ! -L "$root/$dir" ]; then
    mkdir -p "$root/usr/$dir"
    cp -a "$root/$dir/." "$root/usr/$dir/"
    rm -rf "${root:?}/$dir"
  fi
  if [ -d "$root/usr/$dir" ] && [ ! -e "$root/$dir" ]; then
    ln -s "usr/$dir" "$root/$dir"
  fi
done

# A static busybox is the userland: `sh`, `sleep infinity`, `tar`. Its applets become
# links, except where a package already provides the real program.
if [ -x "$root/usr/bin/busybox" ]; then
  for applet in $("$root/usr/bin/busybox" --list); do
    if [ ! -e "$root/usr/bin/$applet" ] && [ ! -L "$root/usr/bin/$applet" ] &&
      [ ! -e "$root/usr/sbin/$applet" ]; then
      ln -s busybox "$root/usr/bin/$applet"
    fi
  done
fi

# Valkey answers to the redis-* names as well, as `make install` of Valkey sets it up.
for program in "$root"/usr/bin/valkey-*; do
  [ -e "$program" ] || continue
  name="${program##*/}"
  [ -e "$root/usr/bin/redis-${name#valkey-}" ] || ln -s "$name" "$root/usr/bin/redis-${name#valkey-}"
done

# What a container never reads: documentation, manuals, the packages' init scripts.
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" \
  "$root/usr/share/lintian" "$root/usr/share/bug" "$root/etc/init.d" "$root/usr/lib/systemd" \
  "$root/.packages" "$root/.request" "$root/.complete"

# Users and the directories programs expect; root only (uid 0): the servers run as the
# pod's securityContext says.
mkdir -p "$root/etc" "$root/tmp" "$root/data" "$root/root" "$root/var/run"
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

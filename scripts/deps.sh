#!/bin/sh
# deps.sh - installs what building, testing and the demo need, from Debian
# packages. Idempotent: installs only what is missing, so `make` can call
# it every time. Needs root (or sudo) only when something is missing.
# Nothing here starts a service: servers the tests need are started by the
# tests themselves, bound to 127.0.0.1.
set -eu

PKGS="build-essential libcmocka-dev uthash-dev pkg-config
      socat curl netcat-openbsd python3 strace busybox
      coreutils gzip valgrind iproute2 wget nginx tar haproxy apache2
      lighttpd rinetd ethtool pv webfs mini-httpd nodejs mbuffer perl"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "deps.sh: missing packages:$missing (run as root or install sudo)" >&2
		exit 1
	}
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Packages with a service (nginx, apache2) must not start it: the tests start their
# own, on 127.0.0.1, and stop it. policy-rc.d(8) answering 101 is Debian's
# way of saying so to the maintainer scripts, for this install only.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" > /dev/null
	$SUDO chmod 755 "$POLICY"
	trap '$SUDO rm -f "$POLICY"' EXIT
fi
# A fresh machine has no package lists yet; refresh them once.
if ! $SUDO apt-get install -y -q --no-install-recommends $missing; then
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi

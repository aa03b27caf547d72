#!/bin/sh
# Installs the Debian packages nectl needs to build and test, if any is missing
# (flex, bison, bc and libelf-dev: `nectl kernel build`, with make, gcc, perl,
# xz-utils and, for aarch64, gcc-aarch64-linux-gnu).
set -eu
pkgs="gcc make pkg-config meson ninja-build libssl-dev zlib1g-dev libcbor-dev libjansson-dev
libarchive-dev libcmocka-dev clang openssl cpio python3 xz-utils qemu-system-x86
gcc-aarch64-linux-gnu libc6-dev-arm64-cross busybox-static
flex bison bc libelf-dev libc6-dev perl"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "nectl: missing packages:$missing" >&2
	echo "nectl: run 'sudo make deps' (or apt-get install$missing) first" >&2
	exit 1
fi
echo "nectl: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null

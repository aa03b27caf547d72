#!/usr/bin/env bash
# nectl kernel build end to end: the cached x86_64 kernel (built when missing),
# then a second build in other directories that must give the same bytes (no
# build path, time or user leaks into the image); the image is a bzImage with
# the Nitro options in its config, a quarter of Debian's cloud kernel at most;
# the aarch64 kernel (cached once per machine) is an arm64 Image. Refusals
# (bad --arch, missing tools) come first: they cost nothing.
set -u
NECTL=$(readlink -f "${1:?usage: test_kernel_build.sh nectl}")
HERE=$(dirname "$(readlink -f "$0")")
T=$(mktemp -d /tmp/nectl-kbuild-XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$HERE/../cli/lib.sh"

seconds() { echo $(($(date +%s) - $1)); }

# config_has ARCH FILE LINE...: each line is in the .config, exactly.
config_has() {
	local arch=$1 f=$2 line
	shift 2
	for line in "$@"; do
		grep -qxF -- "$line" "$f" && ok "$arch config: $line" || bad "$arch config: $line"
	done
}

# payload BZIMAGE OUT: the kernel inside a bzImage, decompressed (xz).
payload() {
	python3 - "$1" "$2" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0:
    sys.exit("no xz stream in " + sys.argv[1])
out = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[at:])
open(sys.argv[2], "wb").write(out)
PY
}

# -- refusals --
expect "bad --arch is refused" 3 "--arch \`sparc\` is not x86_64 or aarch64" -- \
	"$NECTL" kernel build --arch sparc
expect "bad --jobs is refused" 3 "--jobs \`lots\`" -- "$NECTL" kernel build --jobs lots
mkdir "$T/bin"
for t in make gcc perl xz bc dpkg-deb apt-get; do
	ln -s "$(command -v "$t")" "$T/bin/$t"
done
expect "missing flex and bison are named with their packages" 48 \
	"needs flex, bison, which are missing (Debian packages: flex bison;" -- \
	env PATH="$T/bin" "$NECTL" kernel build --force --output-dir "$T/never"
[ -e "$T/never/bzImage" ] && bad "a refused build wrote nothing" || ok "a refused build wrote nothing"

# -- a make that fails (after the real unpack): the error names the step, the
# last error line and the log, which is kept; the work tree goes --
mkdir "$T/failbin"
for t in gcc perl xz bc flex bison dpkg-deb apt-get; do
	ln -s "$(command -v "$t")" "$T/failbin/$t"
done
printf '#!/bin/sh\necho "fake make: error: the build broke"\nexit 2\n' >"$T/failbin/make"
chmod +x "$T/failbin/make"
mkdir "$T/failwork"
expect "a failing make names the step, its error and the log" 48 \
	"make allnoconfig failed (status 2): fake make: error: the build broke; see $T/fail/build.log" -- \
	env PATH="$T/failbin" "$NECTL" kernel build --output-dir "$T/fail" --work-dir "$T/failwork"
grep -q "the build broke" "$T/fail/build.log" 2>/dev/null && ok "the failed build's log is kept" ||
	bad "the failed build's log is kept"
[ -e "$T/fail/info.json" ] && bad "a failed build is not complete" || ok "a failed build is not complete"
[ -z "$(ls -A "$T/failwork")" ] && ok "a failed build's work tree is removed" ||
	bad "a failed build's work tree is removed: $(ls "$T/failwork")"

# -- the cached x86_64 build --
start=$(date +%s)
expect "kernel build (x86_64, cached or built now)" 0 "" -- "$NECTL" kernel build
cp "$T/out" "$T/a.json"
echo "x86_64 kernel build (cached one): $(seconds "$start") s"
A=$(json "$T/a.json" 'j["Kernel"]')
check_eq "Version" "$(json "$T/a.json" 'j["Version"]')" "6.12.95-nectl"
check_eq "Arch" "$(json "$T/a.json" 'j["Arch"]')" "x86_64"
check_eq "SourcePackage" "$(json "$T/a.json" 'j["SourcePackage"]')" "linux-source-6.12"
check_eq "SourceVersion" "$(json "$T/a.json" 'j["SourceVersion"]')" "6.12.95-1~bpo12+1"
check_eq "Sha256 is the image's" "$(json "$T/a.json" 'j["Sha256"]')" "$(sha256sum "$A" | cut -c1-64)"
hash=$(json "$T/a.json" 'j["ConfigHash"]')
case "$(dirname "$A")" in
*/nectl-6.12.95-1~bpo12+1-x86_64-"${hash:0:12}") ok "cache entry named by version, arch, fragment hash" ;;
*) bad "cache entry named by version, arch, fragment hash: $A" ;;
esac
expect "a cached build is found without building" 0 "" -- "$NECTL" kernel build
[ -s "$T/err" ] && bad "a cached build prints no progress: $(head -c 200 "$T/err")" ||
	ok "a cached build prints no progress"

# -- the same kernel again, elsewhere: reproducible --
start=$(date +%s)
expect "kernel build --work-dir --output-dir" 0 "" -- "$NECTL" kernel build --work-dir "$T/work" \
	--output-dir "$T/b" --jobs 2
cp "$T/out" "$T/b.json"
echo "x86_64 kernel build (reproducibility check): $(seconds "$start") s"
B=$T/b/bzImage
check_eq "--output-dir holds the image" "$(json "$T/b.json" 'j["Kernel"]')" "$B"
cmp "$A" "$B" && ok "two builds in different directories are byte-identical" ||
	bad "two builds in different directories are byte-identical"
cmp "$(dirname "$A")/config" "$T/b/config" && ok "same .config" || bad "same .config"
[ -z "$(ls -A "$T/work")" ] && ok "the work tree is removed" || bad "the work tree is removed: $(ls "$T/work")"
[ -s "$T/b/build.log" ] && ok "build.log kept" || bad "build.log kept"
check_eq "info.json Sha256" "$(json "$T/b/info.json" 'j["Sha256"]')" "$(sha256sum "$B" | cut -c1-64)"

# -- what the image is --
magic=$(od -An -c -j 514 -N 4 "$B" | tr -d ' ')
check_eq "a bzImage (HdrS at 0x202)" "$magic" "HdrS"
payload "$B" "$T/vmlinux.bin" && ok "the bzImage's xz payload decompresses" ||
	bad "the bzImage's xz payload decompresses"
banner=$(strings "$T/vmlinux.bin" | grep -m1 '^Linux version ')
case "$banner" in
"Linux version 6.12.95-nectl (nectl@nectl) "*"#1 SMP Sun Jul  5 18:26:27 UTC 2026") ok "pinned build identity: $banner" ;;
*) bad "pinned build identity: $banner" ;;
esac
if [ -s "$T/vmlinux.bin" ]; then
	leaks=$(strings "$T/vmlinux.bin" | grep -cE "$T|/var/cache/nectl|nectl-kernel\.")
	check_eq "no build path in the kernel" "$leaks" 0
else
	bad "no build path in the kernel: no kernel to look at"
fi
config_has x86_64 "$T/b/config" CONFIG_VIRTIO_MMIO=y CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y \
	CONFIG_X86_MPPARSE=y CONFIG_VIRTIO_VSOCKETS=y CONFIG_NSM=y CONFIG_KVM_GUEST=y \
	CONFIG_SERIAL_8250_CONSOLE=y CONFIG_ACPI=y CONFIG_PCI=y CONFIG_DEVTMPFS=y \
	CONFIG_UNIX98_PTYS=y CONFIG_BLK_DEV_INITRD=y "# CONFIG_MODULES is not set"
debian=$("$NECTL" kernel fetch | python3 -c 'import json,sys; print(json.load(sys.stdin)["Kernel"])')
size=$(stat -c %s "$B" 2>/dev/null || echo 999999999)
if [ -f "$debian" ]; then
	dsize=$(stat -c %s "$debian")
	[ $((size * 4)) -le "$dsize" ] && ok "bzImage $size bytes <= 1/4 of Debian's cloud bzImage ($dsize)" ||
		bad "bzImage $size bytes <= 1/4 of Debian's cloud bzImage ($dsize)"
else
	bad "Debian's cloud kernel is cached (nectl kernel fetch)"
fi

# -- aarch64 (cross-built; cached once per machine) --
start=$(date +%s)
expect "kernel build --arch aarch64 (cached or built now)" 0 "" -- "$NECTL" kernel build --arch aarch64
cp "$T/out" "$T/c.json"
echo "aarch64 kernel build (cached one): $(seconds "$start") s"
C=$(json "$T/c.json" 'j["Kernel"]')
check_eq "aarch64 Arch" "$(json "$T/c.json" 'j["Arch"]')" "aarch64"
check_eq "aarch64 image is named Image" "$(basename "$C")" "Image"
magic=$(od -An -tx1 -j 56 -N 4 "$C" | tr -d ' ')
check_eq "an arm64 Image (ARM\\x64 at 56)" "$magic" "41524d64"
config_has aarch64 "$(dirname "$C")/config" CONFIG_VIRTIO_MMIO=y CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y \
	CONFIG_VIRTIO_VSOCKETS=y CONFIG_NSM=y CONFIG_SERIAL_8250_CONSOLE=y \
	CONFIG_SERIAL_OF_PLATFORM=y "# CONFIG_MODULES is not set"
echo "sizes: bzImage $size, Image $(stat -c %s "$C"), Debian cloud bzImage ${dsize:-?}"
summary

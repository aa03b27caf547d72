#!/usr/bin/env bash
# build-enclave end to end, with nectl's Nitro-ready kernel (the default;
# make check builds it once per machine) and the cached Debian kernel (by
# option; make check fetches it): determinism, image formats and layers,
# nitro-cli's blob layout and default, the kernel checks, errors.
set -u
NECTL=$(readlink -f "${1:?usage: test_enclave.sh nectl hello}")
HELLO=$(readlink -f "${2:?usage: test_enclave.sh nectl hello}")
HERE=$(dirname "$(readlink -f "$0")")
T=$(mktemp -d /tmp/nectl-enclave-XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$HERE/lib.sh"

"$NECTL" kernel fetch >"$T/kernel.json" || { echo "0 passed, 1 failed"; exit 1; }
"$NECTL" kernel build >"$T/built.json" || { echo "0 passed, 1 failed"; exit 1; }
KERNEL=$(json "$T/kernel.json" "j['Kernel']")
BUILT=$(json "$T/built.json" "j['Kernel']")

# listing RAMDISK: "type path" lines of a newc archive, via libarchive-free cpio.
listing() { (cd "$T" && cpio -it --quiet <"$1"); }
# extract EIF DIR
extract() { mkdir -p "$2" && "$NECTL" extract-eif --eif-path "$1" --output-dir "$2" >/dev/null; }
# noout FILE WHAT: a failed build left neither the file nor a temporary one.
noout() { [ ! -e "$1" ] && ! ls "$(dirname "$1")" | grep -q '\.tmp\.' && ok "$2: no output" || bad "$2: no output"; }

# A rootfs with the sample app, made twice with different mtimes, paths and umasks.
mkroot() {
	mkdir -p "$1/bin" "$1/etc"
	cp "$HELLO" "$1/bin/hello"
	printf 'nameserver 127.0.0.1\n' >"$1/etc/resolv.conf"
	ln -s hello "$1/bin/hi"
	chmod 755 "$1" "$1/bin" "$1/etc" "$1/bin/hello"
	chmod 644 "$1/etc/resolv.conf"
	touch -h -d "@$2" "$1/bin/hello" "$1/bin/hi" "$1/etc/resolv.conf" "$1/bin" "$1/etc" "$1"
}
mkroot "$T/a/root" 1700000100
sleep 1
mkroot "$T/b/some/other/root" 1800000000
# build ROOT OUT UMASK TIME: the image name comes from OUT's file name.
build() {
	(umask "$3" && "$NECTL" build-enclave --rootfs "$1" --cmd /bin/hello --env GREETING=hi \
		--output-file "$2" --build-time "$4")
}
mkdir -p "$T/a/out" "$T/b/out"
expect "build a" 0 "Enclave Image successfully created" -- build "$T/a/root" "$T/a/out/app.eif" 022 1700000000
cp "$T/a/out/app.eif" "$T/a.eif"
cp "$T/out" "$T/a.json"
expect "build b" 0 "" -- build "$T/b/some/other/root" "$T/b/out/app.eif" 077 1700000000
cmp -s "$T/a.eif" "$T/b/out/app.eif" && ok "same inputs, other dirs, mtimes and umask: identical bytes" ||
	bad "same inputs, other dirs, mtimes and umask: identical bytes"
check_eq "printed PCRs are the image's" "$("$NECTL" describe-eif --eif-path "$T/a.eif" 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Measurements"])')" "$(json "$T/a.json" "j['Measurements']")"
expect "build at another time" 0 "" -- build "$T/a/root" "$T/c.eif" 022 1900000000
check_eq "PCRs do not depend on the build time" "$(json "$T/out" "j['Measurements']")" \
	"$(json "$T/a.json" "j['Measurements']")"
extract "$T/a.eif" "$T/xa"
extract "$T/c.eif" "$T/xc"
for f in kernel cmdline ramdisk0 ramdisk1; do
	cmp -s "$T/xa/$f" "$T/xc/$f" && ok "$f unchanged by the build time" || bad "$f unchanged by the build time"
done
cmp -s "$T/xa/metadata.json" "$T/xc/metadata.json" && bad "metadata records the build time" ||
	ok "metadata records the build time"
cmp -s "$T/xa/kernel" "$BUILT" && ok "kernel section is nectl's built kernel" || bad "kernel section is nectl's built kernel"
grep -q "not Nitro-ready" "$T/err" && bad "no kernel warning for nectl's kernel" || ok "no kernel warning for nectl's kernel"
"$NECTL" describe-eif --eif-path "$T/a.eif" >"$T/da.json" 2>"$T/da.err"
check_eq "describe-eif: nectl's kernel is Nitro-ready" \
	"$(json "$T/da.json" "(j['Kernel']['NitroReady'], j['Kernel']['Problems'], j['Kernel']['Config'] == '$(json "$T/built.json" "j['KernelConfig']")')")" \
	"(True, [], True)"
check_eq "describe-eif: release from the bzImage" "$(json "$T/da.json" "j['Kernel']['Release']")" \
	"$(json "$T/built.json" "j['Version']")"

# The ramdisks: nitro-cli's layout with nectl's init; the kernel has every
# driver built in, so there are no modules.
listing "$T/xa/ramdisk0" >"$T/r0.txt"
check_eq "ramdisk 0 layout" "$(tr '\n' ' ' <"$T/r0.txt")" "dev init "

# Debian's cloud kernel by option: its modules go in, and the kernel is
# reported as not Nitro-ready (no virtio-mmio command-line devices).
expect "build with --debian-kernel" 0 "" -- "$NECTL" build-enclave --debian-kernel --rootfs "$T/a/root" \
	--cmd /bin/hello --output-file "$T/deb.eif" --build-time 1700000000 --name deb
grep -q "warning: kernel $KERNEL (config .*) is not Nitro-ready" "$T/err" &&
	grep -q "warning:   CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set: the Nitro hypervisor announces" "$T/err" &&
	grep -q "will fail its boot heartbeat (E36)" "$T/err" && ok "--debian-kernel: warned, with the reason" ||
	bad "--debian-kernel: warned, with the reason"
rm -rf "$T/xd" && extract "$T/deb.eif" "$T/xd"
cmp -s "$T/xd/kernel" "$KERNEL" && ok "--debian-kernel: the fetched kernel" || bad "--debian-kernel: the fetched kernel"
listing "$T/xd/ramdisk0" >"$T/rd.txt"
check_eq "--debian-kernel: ramdisk 0 layout" "$(grep -v '^nectl/modules/.' "$T/rd.txt" | tr '\n' ' ')" "dev init nectl nectl/modules "
check_eq "--debian-kernel: modules in load order" "$(grep '^nectl/modules/.' "$T/rd.txt" | sed 's|.*/[0-9]*-||; s|\.ko$||' | tr '\n' ' ')" \
	"virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport nsm "
"$NECTL" describe-eif --eif-path "$T/deb.eif" >"$T/dd.json" 2>"$T/dd.err"
check_eq "describe-eif: Debian's kernel is not Nitro-ready" \
	"$(json "$T/dd.json" "(j['Kernel']['NitroReady'], [p.split(' ')[0] for p in j['Kernel']['Problems']])")" \
	"(False, ['CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES', 'CONFIG_X86_MPPARSE'])"
grep -q "warning:   CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set" "$T/dd.err" &&
	ok "describe-eif warns about Debian's kernel" || bad "describe-eif warns about Debian's kernel"
expect "--kernel-version is a Debian kernel" 0 "" -- "$NECTL" build-enclave --kernel-version 6.12.95+deb12 \
	--debian-kernel --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/deb2.eif" --build-time 1700000000 \
	--name deb
cmp -s "$T/deb.eif" "$T/deb2.eif" && ok "--kernel-version: the same image" || bad "--kernel-version: the same image"
# The same kernel given as a file: its .config is found in the cache.
expect "--kernel FILE without a config" 0 "" -- "$NECTL" build-enclave --kernel "$KERNEL" \
	--rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/deb3.eif"
grep -q "CONFIG_VIRTIO_MMIO=m, and this image's init does not load it" "$T/err" &&
	ok "--kernel FILE: config found in the cache, no modules given: warned" ||
	bad "--kernel FILE: config found in the cache, no modules given: warned"
check_eq "ramdisk 1 layout" "$(listing "$T/xa/ramdisk1" | tr '\n' ' ')" \
	"cmd env rootfs rootfs/bin rootfs/bin/hello rootfs/bin/hi rootfs/dev rootfs/etc rootfs/etc/resolv.conf rootfs/proc rootfs/run rootfs/sys rootfs/tmp rootfs/var "
check_eq "cmd file" "$(cd "$T" && cpio -i --quiet --to-stdout cmd <"$T/xa/ramdisk1" | od -c | head -2 | tr -s ' ')" \
	"$(printf '/bin/hello\n' | od -c | head -2 | tr -s ' ')"
check_eq "env file" "$(cd "$T" && cpio -i --quiet --to-stdout env <"$T/xa/ramdisk1")" "GREETING=hi"
check_eq "cpio owners and mtimes" "$(cd "$T" && cpio -itv --quiet <"$T/xa/ramdisk1" 2>/dev/null | awk '{print $3, $4}' | sort -u | tr '\n' ' ')" "root root "
check_eq "cmdline is nitro-cli's" "$(cat "$T/xa/cmdline")" \
	"reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd random.trust_cpu=on"

# Container images: the same layers as OCI layout, OCI archive and docker save.
python3 "$HERE/mkimage.py" "$T/img"
for src in "--oci-layout $T/img/layout" "--image-archive $T/img/oci.tar" "--image-archive $T/img/docker.tar"; do
	name=$(echo "$src" | sed 's|.*/||')
	# shellcheck disable=SC2086
	expect "build from $name" 0 "WorkingDir /srv is not applied" -- "$NECTL" build-enclave $src \
		--output-file "$T/i.eif" --build-time 1700000000
	rm -rf "$T/xi"
	extract "$T/i.eif" "$T/xi"
	listing "$T/xi/ramdisk1" | grep '^rootfs/' | sed 's|^rootfs/||' |
		grep -vxE 'dev|proc|run|sys|tmp' >"$T/paths.txt"
	(cd "$T" && rm -rf ex && mkdir ex && cd ex && cpio -idm --quiet <"$T/xi/ramdisk1")
	: >"$T/got.txt"
	while read -r p; do
		if [ -L "$T/ex/rootfs/$p" ]; then t=l; elif [ -d "$T/ex/rootfs/$p" ]; then t=d; else t=f; fi
		echo "$t $p" >>"$T/got.txt"
	done <"$T/paths.txt"
	check_eq "$name: layers with whiteouts and opaque dirs" "$(cat "$T/got.txt")" "$(cat "$T/img/expected.txt")"
	check_eq "$name: cmd is Cmd (nitro-cli ignores Entrypoint then)" "$(cat "$T/ex/cmd")" "$(printf -- '--flag\ntwo words')"
	check_eq "$name: env" "$(cat "$T/ex/env")" "$(printf 'PATH=/usr/bin:/bin\nHELLO=Hello from the enclave side!')"
	check_eq "$name: symlink kept" "$(readlink "$T/ex/rootfs/lib")" "usr/lib"
	check_eq "$name: setuid kept, hard link shares the inode" \
		"$(stat -c '%a %i' "$T/ex/rootfs/usr/bin/tool" | cut -d' ' -f1) $(stat -c %i "$T/ex/rootfs/usr/bin/tool-link")" \
		"4755 $(stat -c %i "$T/ex/rootfs/usr/bin/tool")"
	check_eq "$name: DockerInfo is the image config" "$(json "$T/xi/metadata.json" "j['DockerInfo']['config']['WorkingDir']")" "/srv"
	cp "$T/xi/ramdisk1" "$T/rd1-$name"
done
cmp -s "$T/rd1-layout" "$T/rd1-oci.tar" && cmp -s "$T/rd1-layout" "$T/rd1-docker.tar" &&
	ok "all three image formats give the same ramdisk" || bad "all three image formats give the same ramdisk"
expect "--entrypoint and --cmd override" 0 "" -- "$NECTL" build-enclave --oci-layout "$T/img/layout" \
	--entrypoint '/bin/sh -c' --cmd '"echo \"hi there\""' --env HELLO=replaced --env NEW=1 \
	--output-file "$T/o.eif" --build-time 1700000000
rm -rf "$T/xo" && extract "$T/o.eif" "$T/xo"
check_eq "overridden cmd" "$(cd "$T" && cpio -i --quiet --to-stdout cmd <"$T/xo/ramdisk1")" "$(printf '/bin/sh\n-c\necho "hi there"')"
check_eq "overridden env" "$(cd "$T" && cpio -i --quiet --to-stdout env <"$T/xo/ramdisk1")" \
	"$(printf 'PATH=/usr/bin:/bin\nHELLO=replaced\nNEW=1')"
python3 "$HERE/mkimage.py" "$T/ep" '{"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/app", "x"]}}'
expect "Entrypoint only" 0 "" -- "$NECTL" build-enclave --oci-layout "$T/ep/layout" --output-file "$T/e.eif"
rm -rf "$T/xe" && extract "$T/e.eif" "$T/xe"
check_eq "Entrypoint only: cmd is Entrypoint" "$(cd "$T" && cpio -i --quiet --to-stdout cmd <"$T/xe/ramdisk1")" "$(printf '/bin/app\nx')"
# A stand-in arm64 Image ("ARM\x64" at 0x38) reaches the image's platform check.
python3 -c "import sys; b=bytearray(4096); b[0x38:0x3c]=b'ARM\x64'; open(sys.argv[1],'wb').write(b)" "$T/Image"
expect "image without the requested arch" 48 "arm64" -- "$NECTL" build-enclave --oci-layout "$T/img/layout" \
	--arch aarch64 --kernel "$T/Image" --init "$HELLO" --output-file "$T/no.eif"

# aarch64: nectl's arm64 kernel by default, Debian's with its modules by
# option, and the cross-compiled init.
if "$NECTL" kernel build --arch aarch64 >"$T/b64.json"; then
	expect "build for aarch64" 0 "" -- "$NECTL" build-enclave --arch aarch64 --rootfs "$T/a/root" \
		--cmd /bin/hello --output-file "$T/arm.eif"
	grep -q "not Nitro-ready" "$T/err" && bad "aarch64: no kernel warning" || ok "aarch64: no kernel warning"
	rm -rf "$T/x64" && extract "$T/arm.eif" "$T/x64"
	cmp -s "$T/x64/kernel" "$(json "$T/b64.json" "j['Kernel']")" && ok "aarch64: nectl's kernel" || bad "aarch64: nectl's kernel"
	check_eq "aarch64: no modules" "$(listing "$T/x64/ramdisk0" | tr '\n' ' ')" "dev init "
else
	bad "kernel build --arch aarch64"
fi
if "$NECTL" kernel fetch --arch aarch64 >"$T/k64.json"; then
	expect "build for aarch64 with Debian's kernel" 0 "" -- "$NECTL" build-enclave --arch aarch64 \
		--debian-kernel --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/arm.eif"
	"$NECTL" describe-eif --eif-path "$T/arm.eif" >"$T/arm.json" 2>/dev/null
	check_eq "aarch64 header flag" "$(json "$T/arm.json" "(j['Arch'], j['HeaderFlags'])")" "('aarch64', 1)"
	rm -rf "$T/x64" && extract "$T/arm.eif" "$T/x64"
	cmp -s "$T/x64/kernel" "$(json "$T/k64.json" "j['Kernel']")" && ok "aarch64 kernel section" || bad "aarch64 kernel section"
	check_eq "aarch64 init is an aarch64 static ELF" "$(cd "$T" && cpio -i --quiet --to-stdout init <"$T/x64/ramdisk0" |
		python3 -c 'import sys; b=sys.stdin.buffer.read(64); print(b[:4] == b"\x7fELF", int.from_bytes(b[18:20], "little"))')" "True 183"
	check_eq "aarch64 modules" "$(listing "$T/x64/ramdisk0" | grep -c '^nectl/modules/.')" 5
	check_eq "aarch64 cmdline is nitro-cli's" "$(cat "$T/x64/cmdline")" \
		"reboot=k panic=30 pci=off nomodules console=ttyS0 random.trust_cpu=on root=/dev/ram0"
else
	bad "kernel fetch --arch aarch64"
fi

# nitro-cli's blob directory, with stand-in files: bzImage magic at 0x202.
mkdir -p "$T/blobs"
python3 -c "import sys; b=bytearray(4096); b[0x202:0x206]=b'HdrS'; open(sys.argv[1],'wb').write(b)" "$T/blobs/bzImage"
printf '#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration\n' >"$T/blobs/bzImage.config"
printf 'stand-in init' >"$T/blobs/init"
printf 'stand-in nsm' >"$T/blobs/nsm.ko"
printf '  reboot=k console=ttyS0 blob-cmdline  \n' >"$T/blobs/cmdline"
expect "build with --blobs" 0 "" -- "$NECTL" build-enclave --blobs "$T/blobs" --rootfs "$T/a/root" \
	--cmd /bin/hello --output-file "$T/bl.eif" --build-time 1700000000
rm -rf "$T/xb" && extract "$T/bl.eif" "$T/xb"
check_eq "blobs: ramdisk 0 is nitro-cli's" "$(listing "$T/xb/ramdisk0" | tr '\n' ' ')" "dev init nsm.ko "
check_eq "blobs: init and nsm.ko are the blobs" "$(cd "$T" && cpio -i --quiet --to-stdout init nsm.ko <"$T/xb/ramdisk0")" "stand-in initstand-in nsm"
check_eq "blobs: cmdline trimmed" "$(cat "$T/xb/cmdline")" "reboot=k console=ttyS0 blob-cmdline"
check_eq "blobs: kernel version from the config" "$(json "$T/xb/metadata.json" "j['BuildMetadata']['KernelVersion']")" "4.14.256"
# nitro-cli's blob directory is the default when it exists ($NITRO_CLI_BLOBS
# stands in for /usr/share/nitro_enclaves/blobs here).
expect "blobs by default" 0 "" -- env NITRO_CLI_BLOBS="$T/blobs" "$NECTL" build-enclave \
	--rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bl2.eif" --build-time 1700000000 --name bl
cmp -s "$T/bl.eif" "$T/bl2.eif" && ok "blobs by default: the --blobs image" || bad "blobs by default: the --blobs image"
expect "NITRO_CLI_BLOBS names a missing directory" 19 "$T/noblobs/cmdline" -- env NITRO_CLI_BLOBS="$T/noblobs" \
	"$NECTL" build-enclave --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bad.eif"
mkdir -p "$T/emptycache"
expect "no kernel built yet" 19 "nectl kernel build" -- env NECTL_CACHE_DIR="$T/emptycache" "$NECTL" \
	build-enclave --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bad.eif"
noout "$T/bad.eif" "no kernel built yet"
expect "--blobs and --debian-kernel" 2 "Conflicting" -- "$NECTL" build-enclave --blobs "$T/blobs" \
	--debian-kernel --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bad.eif"
expect "--modules-dir without --kernel" 1 "give --kernel too" -- "$NECTL" build-enclave \
	--modules-dir "$T" --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bad.eif"

# Bad inputs: a clear error, the E-code as status, and no output file.
expect "missing kernel" 19 "$T/nokernel" -- "$NECTL" build-enclave --kernel "$T/nokernel" \
	--rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bad.eif"
noout "$T/bad.eif" "missing kernel"
expect "kernel of the wrong arch" 3 "is an x86_64 kernel but --arch is aarch64" -- "$NECTL" build-enclave \
	--kernel "$KERNEL" --arch aarch64 --rootfs "$T/a/root" --cmd /bin/hello --output-file "$T/bad.eif"
noout "$T/bad.eif" "wrong arch"
head -c 3000 "$T/img/docker.tar" >"$T/corrupt.tar"
expect "corrupt tar" 48 "corrupt.tar" -- "$NECTL" build-enclave --image-archive "$T/corrupt.tar" \
	--output-file "$T/bad.eif"
noout "$T/bad.eif" "corrupt tar"
python3 - "$T/escape.tar" "$T/parent.tar" <<'PY'
import io, sys, tarfile
def mk(path, entries):
    with tarfile.open(path, "w") as tf:
        for name, kind, target in entries:
            i = tarfile.TarInfo(name)
            if kind == "l":
                i.type, i.linkname = tarfile.SYMTYPE, target
                tf.addfile(i)
            else:
                i.size = 1
                tf.addfile(i, io.BytesIO(b"x"))
mk(sys.argv[1], [("bin/x", "f", None), ("../../etc/passwd", "f", None)])
mk(sys.argv[2], [("lib", "l", "/usr/lib"), ("lib/evil.so", "f", None)])
PY
expect "entry escaping the root" 48 "climbs out of the root" -- "$NECTL" build-enclave \
	--rootfs "$T/escape.tar" --cmd /bin/x --output-file "$T/bad.eif"
noout "$T/bad.eif" "escape"
expect "entry under a symlink" 48 "which is a symlink" -- "$NECTL" build-enclave \
	--rootfs "$T/parent.tar" --cmd /bin/x --output-file "$T/bad.eif"
noout "$T/bad.eif" "symlink parent"
python3 "$HERE/mkimage.py" "$T/nocmd" '{"architecture": "amd64", "os": "linux", "config": {}}'
expect "image without Cmd or Entrypoint" 48 "neither Cmd nor Entrypoint" -- "$NECTL" build-enclave \
	--oci-layout "$T/nocmd/layout" --output-file "$T/bad.eif"
noout "$T/bad.eif" "no cmd"
expect "rootfs without --cmd" 48 "neither Cmd nor Entrypoint" -- "$NECTL" build-enclave \
	--rootfs "$T/a/root" --output-file "$T/bad.eif"
expect "no Docker daemon" 50 "--image-archive" -- env DOCKER_HOST=unix://$T/none.sock "$NECTL" \
	build-enclave --docker-uri hello:latest --output-file "$T/bad.eif"
expect "two sources" 2 "Conflicting" -- "$NECTL" build-enclave --rootfs "$T/a/root" \
	--oci-layout "$T/img/layout" --output-file "$T/bad.eif"
expect "bad --cmd quoting" 3 "unterminated" -- "$NECTL" build-enclave --rootfs "$T/a/root" \
	--cmd "'oops" --output-file "$T/bad.eif"
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	mkdir -p "$T/locked/bin" && cp "$HELLO" "$T/locked/bin/hello" && chmod 000 "$T/locked/bin/hello"
	chmod 755 "$T" "$T/locked" "$T/locked/bin"
	mkdir -p "$T/outdir" && chmod 777 "$T/outdir"
	expect "unreadable file" 19 "locked/bin/hello" -- env -u LD_LIBRARY_PATH setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$NECTL" build-enclave --rootfs "$T/locked" --cmd /bin/hello --kernel "$KERNEL" \
		--output-file "$T/outdir/bad.eif"
	noout "$T/outdir/bad.eif" "unreadable file"
fi

# ---- hostile inputs and hostile neighbours (issue 9) ----
# --docker-uri exports through `docker save` into a private directory
# (mkdtemp), never a predictable /tmp name another user could plant a symlink
# at; both are gone afterwards. A stand-in daemon socket and docker binary.
mkdir -p "$T/fakebin"
cat >"$T/fakebin/docker" <<EOF
#!/bin/sh
[ "\$1" = save ] && [ "\$3" = -o ] || exit 1
d=\$(dirname "\$4")
echo "\$4 \$(stat -c '%a %u' "\$d") \$(ls -A "\$d" | wc -l)" >"$T/docker-o.txt"
cp "$T/img/docker.tar" "\$4"
EOF
chmod 755 "$T/fakebin/docker"
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); time.sleep(120)' "$T/docker.sock" &
sockpid=$!
for _ in $(seq 50); do [ -S "$T/docker.sock" ] && break; sleep 0.1; done
expect "--docker-uri through a daemon" 0 "" -- env DOCKER_HOST="unix://$T/docker.sock" \
	PATH="$T/fakebin:$PATH" "$NECTL" build-enclave --docker-uri hello:latest --output-file "$T/dk.eif"
kill "$sockpid" 2>/dev/null
wait "$sockpid" 2>/dev/null
read -r dpath dmode downer dcount <"$T/docker-o.txt"
if [[ $dpath =~ ^/tmp/nectl-docker-[0-9]+\.tar$ ]]; then
	bad "docker save: predictable name $dpath"
else
	[ "$dmode $downer $dcount" = "700 $(id -u) 0" ] && ok "docker save: into a fresh private directory" ||
		bad "docker save: into a fresh private directory (got $dpath $dmode $downer $dcount)"
fi
[ -n "$dpath" ] && [ ! -e "$dpath" ] && [ ! -e "$(dirname "$dpath")" ] &&
	ok "docker save: archive and directory removed" || bad "docker save: archive and directory removed"
# A 2.5 KiB GNU sparse tar whose one file claims 2^40 bytes: refused at once,
# nothing written (run with a 2 MiB file-size limit, so a loader that spools
# the terabyte dies of SIGXFSZ instead of filling the disk).
python3 - "$T/bomb.tar" <<'PY'
import sys
def num(v, w):
    return b'%0*o\0' % (w - 1, v) if v < 8 ** (w - 1) else b'\x80' + v.to_bytes(w - 1, 'big')
h = bytearray(512)
h[0:4] = b'bomb'
h[100:108], h[108:116], h[116:124] = num(0o644, 8), num(0, 8), num(0, 8)
h[124:136], h[136:148], h[156] = num(1024, 12), num(1600000000, 12), ord('S')
h[257:265] = b'ustar  \0'
h[386:398], h[398:410], h[483:495] = num(2**40 - 1024, 12), num(1024, 12), num(2**40, 12)
h[148:156] = b' ' * 8
h[148:156] = b'%06o\0 ' % sum(h)
open(sys.argv[1], 'wb').write(bytes(h) + b'x' * 1024 + bytes(1024))
PY
mkdir -p "$T/bombtmp"
t0=$(date +%s%N)
expect "sparse tar claiming 2^40 bytes refused" 48 "entry \`bomb\`" -- bash -c 'ulimit -f 2048 && exec env TMPDIR="$1" "${@:2}"' _ \
	"$T/bombtmp" "$NECTL" build-enclave --rootfs "$T/bomb.tar" --cmd /x --output-file "$T/bomb.eif"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q '^\[ E48 \] .*bomb.tar: entry `bomb`: 1099511627776 bytes .* limit of 4 GiB of file data (raise it with --max-file-data)$' \
	"$T/err" && [ "$(grep -c '^\[ E' "$T/err")" -eq 1 ] &&
	ok "sparse bomb: one error line naming the limit" || bad "sparse bomb: one error line naming the limit ($(cat "$T/err"))"
[ "$ms" -lt 1000 ] && ok "sparse bomb: refused in $ms ms" || bad "sparse bomb: refused in $ms ms, not under 1000"
noout "$T/bomb.eif" "sparse bomb"
[ -z "$(ls -A "$T/bombtmp")" ] && ok "sparse bomb: no temporary file" || bad "sparse bomb: no temporary file"
# The limits are options: lowered, an ordinary rootfs hits them; malformed, refused.
expect "--max-file-data 1K" 48 "limit of 1 KiB of file data" -- "$NECTL" build-enclave --rootfs "$T/a/root" \
	--cmd /bin/hello --output-file "$T/lim.eif" --max-file-data 1K
expect "--max-entries 3" 48 "more than 3 entries" -- "$NECTL" build-enclave --rootfs "$T/a/root" \
	--cmd /bin/hello --output-file "$T/lim.eif" --max-entries 3
noout "$T/lim.eif" "lowered limits"
expect "--max-file-data 1X refused" 3 "--max-file-data" -- "$NECTL" build-enclave --rootfs "$T/a/root" \
	--cmd /bin/hello --output-file "$T/lim.eif" --max-file-data 1X
expect "--max-entries -1 refused" 3 "--max-entries" -- "$NECTL" build-enclave --rootfs "$T/a/root" \
	--cmd /bin/hello --output-file "$T/lim.eif" --max-entries -1
expect "raised limits build" 0 "" -- "$NECTL" build-enclave --rootfs "$T/a/root" --cmd /bin/hello \
	--env GREETING=hi --output-file "$T/lim.eif" --max-file-data 16G --max-entries 2000000 --build-time 1700000000 --name app
cmp -s "$T/lim.eif" "$T/a.eif" && ok "raised limits: the same image" || bad "raised limits: the same image"
# A million empty files, streamed through a FIFO: refused at the entry limit.
mkfifo "$T/million.tar"
timeout 120 python3 - 1000000 >"$T/million.tar" <<'PY' &
import sys
h = bytearray(512)
h[100:108], h[108:116], h[116:124] = b'0000644\0', b'0000000\0', b'0000000\0'
h[124:136], h[136:148], h[156] = b'00000000000\0', b'13720761400\0', ord('0')
h[257:265], h[148:156] = b'ustar  \0', b' ' * 8
base, out, chunk = sum(h), sys.stdout.buffer, []
try:
    for i in range(int(sys.argv[1])):
        h[0:8] = name = b'f%07d' % i
        h[148:156] = b'%06o\0 ' % (base + sum(name))
        chunk.append(bytes(h))
        if len(chunk) == 256:
            out.write(b''.join(chunk))
            chunk = []
    out.write(b''.join(chunk) + bytes(1024))
    out.flush()
except BrokenPipeError:
    pass
PY
genpid=$!
t0=$(date +%s%N)
expect "tar of a million empty files refused" 48 "entries" -- "$NECTL" build-enclave --rootfs "$T/million.tar" \
	--cmd /x --output-file "$T/million.eif"
ms=$((($(date +%s%N) - t0) / 1000000))
kill "$genpid" 2>/dev/null
wait "$genpid" 2>/dev/null
grep -q '^\[ E48 \] .*million.tar: entry `f0250000`: more than 250000 entries, the limit (raise it with --max-entries)$' \
	"$T/err" && [ "$(grep -c '^\[ E' "$T/err")" -eq 1 ] &&
	ok "entry bomb: one error line naming the limit ($ms ms)" || bad "entry bomb: one error line naming the limit ($(cat "$T/err"))"
noout "$T/million.eif" "entry bomb"
# An OCI layout's index.json that is a symlink (here to a copy of the real one)
# is not followed.
cp -r "$T/img/layout" "$T/linked"
mv "$T/linked/index.json" "$T/linked-index.json"
ln -s "$T/linked-index.json" "$T/linked/index.json"
expect "OCI layout: symlinked index.json not followed" 48 "index.json: is a symlink" -- "$NECTL" build-enclave \
	--oci-layout "$T/linked" --output-file "$T/linked.eif"
noout "$T/linked.eif" "symlinked index.json"
# ---- end of hostile inputs ----
summary

#!/usr/bin/env bash
# nectl's emulated enclaves end to end, inside the TCG shell VM (whose
# /dev/kvm runs Linux): four run-enclave at once (CIDs, names), describe,
# vsock through TCP and Unix forwards both ways (64 MiB each way, 16
# connections, a stalled reader, half-close), console capture, app exit
# status (init's report), kernel panic (a reboot on Nitro's machine, pvpanic
# with ACPI), console text that must not decide anything, a SIGKILLed supervisor, the heartbeat timeout, and
# terminate leaving nothing behind; Nitro's machine (the default) against
# Debian's kernel: E36 saying why, and the same image with --machine-acpi.
# Every image but debian.eif has build-enclave's default kernel (nectl's own).
# The checks run in tests/shellvm/emulate_inner.sh; this side builds the
# images and counts.
set -u
NECTL=$(readlink -f "${1:?usage: test_emulate.sh nectl xfer hello [emulated|sim]}")
XFER=$(readlink -f "${2:?}")
HELLO=$(readlink -f "${3:?}")
# emulated: run-enclave --emulate; sim: the same checks through the native
# code path on the NE driver model (emulate_inner.sh says what differs).
MODE=${4:-emulated}
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
T=$(mktemp -d /tmp/nectl-emulate-XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$HERE/../cli/lib.sh"
. "$HERE/rerun.sh"

mkdir -p "$T/root/bin"
cp "$XFER" "$T/root/bin/xfer"
cp /bin/busybox "$T/root/bin/busybox"
build() { # build NAME CMD-JSON [build-enclave options]
	local name=$1 cmd=$2
	shift 2
	expect "build $name.eif" 0 "" -- "$NECTL" build-enclave --rootfs "$T/root" --cmd "$cmd" \
		--output-file "$T/$name.eif" --build-time 1700000000 "$@"
	cp "$T/out" "$T/$name.build.json"
}
# The app first prints what once decided an enclave's end (a panic, init's
# words): the enclave must run on, its record unchanged.
build app '["/bin/busybox", "sh", "-c", "echo Kernel panic - not syncing: forged by the app; echo nectl-init: app exited with status 7; /bin/xfer send vsock:3:7000 4M; /bin/xfer nsm-attest vsock:3:7001 c0ffee01; exec /bin/xfer serve"]'
# An EIF whose own cmdline already names the device (some images do): the
# machine appends its entry after it, and the device must still work.
build exit3 '["/bin/busybox", "sh", "-c", "echo bye; exit 3"]' --cmdline "reboot=k panic=30 \
pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd \
random.trust_cpu=on virtio_mmio.device=4K@0xd0000000:5"
# A real panic; panic=1 so that Nitro's machine sees its reboot in a second.
build panic '["/bin/busybox", "sh", "-c", "echo c > /proc/sysrq-trigger"]' --cmdline "reboot=k \
panic=1 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd \
random.trust_cpu=on"
build off '["/bin/busybox", "poweroff", "-f"]'
json "$T/app.build.json" 'j["Measurements"]["PCR0"]' >"$T/app.pcr0"
# The sample app (examples/hello) alone, as make demo builds it, and on
# Debian's cloud kernel: that one fails on Nitro's machine and runs with
# --machine-acpi.
mkdir -p "$T/hello/bin" && cp "$HELLO" "$T/hello/bin/hello"
expect "build hello.eif" 0 "" -- "$NECTL" build-enclave --rootfs "$T/hello" --cmd /bin/hello \
	--output-file "$T/hello.eif" --build-time 1700000000
expect "build debian.eif" 0 "not Nitro-ready" -- "$NECTL" build-enclave --rootfs "$T/hello" \
	--cmd /bin/hello --output-file "$T/debian.eif" --build-time 1700000000 --debian-kernel

# nectl is dynamically linked: its libraries go into the shell VM too.
shellvm_libs "$NECTL"
run_vm() {
	start=$(date +%s)
	"$ROOT/scripts/shellvm.sh" --timeout 1200 --mem 3G "${files[@]}" --file "$NECTL:/nectl" \
		--file "$XFER:/xfer" --file "$T/app.eif:/app.eif" --file "$T/exit3.eif:/exit3.eif" \
		--file "$T/off.eif:/off.eif" --file "$T/hello.eif:/hello.eif" \
		--file "$T/panic.eif:/panic.eif" --file "$T/debian.eif:/debian.eif" \
		--file "$T/app.pcr0:/app.pcr0" --file "$HERE/emulate_inner.sh:/inner.sh" \
		-- sh /inner.sh "$MODE" >"$T/log" 2>"$T/err"
	rc=$?
	echo "shell VM run: status $rc after $(($(date +%s) - start)) s"
}
run_vm
rerun_dead_vm "$T/err"
cat "$T/log"
[ "$rc" -ne 0 ] && tail -5 "$T/err" | sed 's/^/  shellvm: /'
pass=$((pass + $(grep -c '^ok - ' "$T/log")))
fail=$((fail + $(grep -c '^FAIL - ' "$T/log")))
retried=$((retried + $(grep -c '^retry - ' "$T/log")))
grep -q '^@@done' "$T/log" && ok "the in-VM checks ran to the end" || bad "the in-VM checks ran to the end"
summary

#!/usr/bin/env bash
# nectl's emulated enclaves end to end, inside the TCG shell VM (whose
# /dev/kvm runs Linux): four run-enclave at once (CIDs, names), describe,
# vsock through TCP and Unix forwards both ways (64 MiB each way, 16
# connections, a stalled reader, half-close), console capture, app exit
# status, kernel panic, a SIGKILLed supervisor, the heartbeat timeout, and
# terminate leaving nothing behind; Nitro's machine (the default) against
# Debian's kernel: E36 saying why, and the same image with --machine-acpi.
# The checks run in tests/shellvm/emulate_inner.sh (which also says which
# runs assume Debian's kernel); this side builds the images and counts.
set -u
NECTL=$(readlink -f "${1:?usage: test_emulate.sh nectl xfer hello}")
XFER=$(readlink -f "${2:?}")
HELLO=$(readlink -f "${3:?}")
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
build app '["/bin/busybox", "sh", "-c", "/bin/xfer send vsock:3:7000 4M; exec /bin/xfer serve"]'
# AWS's blob kernels find vsock through virtio_mmio.device= (Debian's through
# ACPI): with both, the device must still work.
build exit3 '["/bin/busybox", "sh", "-c", "echo bye; exit 3"]' --cmdline "reboot=k panic=30 \
pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd \
random.trust_cpu=on virtio_mmio.device=4K@0xd0000000:5"
build panic '["/bin/busybox", "sh", "-c", "echo c > /proc/sysrq-trigger"]'
build off '["/bin/busybox", "poweroff", "-f"]'
json "$T/app.build.json" 'j["Measurements"]["PCR0"]' >"$T/app.pcr0"
# The sample app (examples/hello) alone, on Debian's cloud kernel by name
# (whatever build-enclave's default): it fails on Nitro's machine, and
# runs with --machine-acpi.
"$NECTL" kernel fetch >"$T/kernel.json" || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$T/hello/bin" && cp "$HELLO" "$T/hello/bin/hello"
expect "build debian.eif" 0 "" -- "$NECTL" build-enclave --rootfs "$T/hello" --cmd /bin/hello \
	--output-file "$T/debian.eif" --build-time 1700000000 \
	--kernel "$(json "$T/kernel.json" "j['Kernel']")" \
	--kernel-config "$(json "$T/kernel.json" "j['KernelConfig']")" \
	--modules-dir "$(json "$T/kernel.json" "j['ModulesDir']")"

# With a kernel that boots on Nitro's machine (until build-enclave's default
# is one), the power-off EIF runs there too: NECTL_TEST_NITRO_KERNEL names its
# bzImage, NECTL_TEST_NITRO_KERNEL_CONFIG its .config.
nitro=()
if [ -n "${NECTL_TEST_NITRO_KERNEL:-}" ]; then
	build nitro-off '["/bin/busybox", "poweroff", "-f"]' --kernel "$NECTL_TEST_NITRO_KERNEL" \
		--kernel-config "${NECTL_TEST_NITRO_KERNEL_CONFIG:?}"
	nitro=(--file "$T/nitro-off.eif:/nitro-off.eif")
fi

# nectl is dynamically linked: its libraries go into the shell VM too.
files=()
for lib in $(ldd "$NECTL" | grep -o '/[^ ]*'); do
	files+=(--file "$(readlink -f "$lib"):$lib")
done
run_vm() {
	start=$(date +%s)
	"$ROOT/scripts/shellvm.sh" --timeout 1200 --mem 3G "${files[@]}" --file "$NECTL:/nectl" \
		--file "$XFER:/xfer" --file "$T/app.eif:/app.eif" --file "$T/exit3.eif:/exit3.eif" \
		--file "$T/off.eif:/off.eif" "${nitro[@]}" \
		--file "$T/panic.eif:/panic.eif" --file "$T/debian.eif:/debian.eif" \
		--file "$T/app.pcr0:/app.pcr0" --file "$HERE/emulate_inner.sh:/inner.sh" \
		-- sh /inner.sh >"$T/log" 2>"$T/err"
	rc=$?
	echo "shell VM run: status $rc after $(($(date +%s) - start)) s"
}
run_vm
rerun_dead_vm "$T/err"
cat "$T/log"
[ "$rc" -ne 0 ] && tail -5 "$T/err" | sed 's/^/  shellvm: /'
pass=$((pass + $(grep -c '^ok - ' "$T/log")))
fail=$((fail + $(grep -c '^FAIL - ' "$T/log")))
grep -q '^@@done' "$T/log" && ok "the in-VM checks ran to the end" || bad "the in-VM checks ran to the end"
summary

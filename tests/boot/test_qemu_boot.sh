#!/usr/bin/env bash
# The initramfs boots on another hypervisor: the sample EIF's kernel and
# ramdisks under QEMU (TCG, -M microvm; its PIT on, which the kernel needs to
# calibrate the TSC under TCG), twice: with build-enclave's default kernel
# (nectl's own) on a microvm with ACPI off, as Nitro's machine is, and with
# Debian's cloud kernel (--debian-kernel), which needs ACPI, and its modules.
# nectl's init must mount, load every module the image carries (the console
# shows each) and reach the heartbeat. QEMU here has no vsock backend, so the
# heartbeat cannot be sent: the test asserts init's report of that and its
# orderly shutdown.
set -u
NECTL=$(readlink -f "${1:?usage: test_qemu_boot.sh nectl hello}")
HELLO=$(readlink -f "${2:?usage: test_qemu_boot.sh nectl hello}")
HERE=$(dirname "$(readlink -f "$0")")
T=$(mktemp -d /tmp/nectl-boot-XXXXXX)
trap 'cp "$T"/*.log "${TMPDIR:-/tmp}/" 2>/dev/null; rm -rf "$T"' EXIT
. "$HERE/../cli/lib.sh"

if ! command -v qemu-system-x86_64 >/dev/null; then
	bad "qemu-system-x86_64 is not installed (make deps installs qemu-system-x86)"
	summary
	exit 1
fi
mkdir -p "$T/root/bin"
cp "$HELLO" "$T/root/bin/hello"
# QEMU 7.2's TCG on this nested machine sometimes loses the kernel: with -cpu
# max a double fault in cmpxchg16b, with qemu64 a fault in iretq (1 boot in
# 10), with neither PIT nor tsc_early_khz a hang calibrating the TSC. Nehalem
# with tsc_early_khz (appended for the emulator only) booted 30 times out of
# 30. An attempt lost before nectl's init starts says nothing about the
# initramfs, so up to three are made; once init has started, the attempt counts.
# microvm has no i8042 to reset the machine through (reboot=k, which Nitro's
# machine and nectl's answer): without ACPI's reset register the emulator is
# told reboot=t (a triple fault, which -no-reboot turns into an exit).
boot() { # boot NAME ACPI(on|off) [EXTRA]: the extracted EIF in $T/NAME, console in $T/NAME.log
	local log=$T/$1.log
	for attempt in 1 2 3; do
		start=$(date +%s)
		timeout 120 qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on,acpi=$2 -cpu Nehalem \
			-smp 1 -m 512M -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
			-kernel "$T/$1/kernel" -initrd "$T/$1/initrd" \
			-append "$(cat "$T/$1/cmdline") tsc_early_khz=2000000${3:+ $3}" </dev/null >"$log" 2>&1
		rc=$?
		echo "$1, attempt $attempt: qemu exited with status $rc after $(($(date +%s) - start)) s"
		grep -q "nectl-init: starting" "$log" && break
		echo "$1, attempt $attempt: the emulated kernel failed before init ran:"
		tr -d '\r' <"$log" | tail -5 | sed 's/^/  console: /'
	done
	# Once (2026-11-26) QEMU booted the guest again after its orderly reboot,
	# -no-reboot notwithstanding, and a later boot's init was lost to the
	# emulator: the checks read the first boot, which is the one under test.
	boots=$(tr -d '\r' <"$log" | grep -c "Linux version")
	if [ "$boots" -gt 1 ]; then
		echo "QEMU booted the guest $boots times despite -no-reboot: the checks read the first boot"
		tr -d '\r' <"$log" | awk '/Linux version/ { n++ } n <= 1' >"$T/first.log"
		mv "$T/first.log" "$log"
	fi
	tr -d '\r' <"$log" | grep -E 'nectl-init|reboot:|Kernel panic' | sed "s/^/  $1 console: /"
	check_eq "$1: QEMU exited by itself (guest reboot, -no-reboot)" "$rc" 0
	grep -q "nectl-init: heartbeat: cannot connect to the parent (CID 3, port 9000)" "$log" &&
		ok "$1: init reports the heartbeat could not be sent" ||
		bad "$1: init reports the heartbeat could not be sent"
	grep -q "reboot: Restarting system" "$log" && ok "$1: orderly shutdown" || bad "$1: orderly shutdown"
	grep -q "Kernel panic" "$log" && bad "$1: no kernel panic" || ok "$1: no kernel panic"
}
build() { # build NAME [build-enclave options]
	local name=$1
	shift
	expect "build the sample EIF ($name)" 0 "" -- "$NECTL" build-enclave --rootfs "$T/root" \
		--cmd /bin/hello --output-file "$T/$name.eif" --build-time 1700000000 "$@"
	mkdir -p "$T/$name"
	"$NECTL" extract-eif --eif-path "$T/$name.eif" --output-dir "$T/$name" >/dev/null
}

build nectl
boot nectl off reboot=t
grep -q "nectl-init: loaded module" "$T/nectl.log" && bad "nectl: no modules to load" ||
	ok "nectl: no modules to load (all built in)"
grep -q "No such device" "$T/nectl.log" && ok "nectl: no vsock device on this QEMU, said" ||
	bad "nectl: no vsock device on this QEMU, said"

build debian --debian-kernel
boot debian on
for m in virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport nsm; do
	grep -q "nectl-init: loaded module $m\b" "$T/debian.log" && ok "debian: module $m loaded" ||
		bad "debian: module $m loaded"
done
summary

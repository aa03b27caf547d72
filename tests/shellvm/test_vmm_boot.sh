#!/usr/bin/env bash
# nectl's own hypervisor boots an unmodified EIF on Nitro's machine (the
# device announced only by the virtio_mmio.device= entry appended to the
# cmdline, CPUs and the I/O APIC in an MP table, no ACPI): Linux from the EIF
# in enclave memory, nectl's init, the boot heartbeat answered by nectl's
# virtio-vsock device, the app (busybox sh) run with its exit status reported,
# then reboot=k caught as the enclave's end. An app's poweroff -f halts the
# guest there (no power-off method without ACPI); with the ACPI option it
# ends the run as an ACPI S5 power-off. Debian's cloud kernel never probes
# the vsock device on Nitro's machine, and the machine says so. Runs inside
# the TCG shell VM, whose /dev/kvm can run Linux.
#
# Kernels: build-enclave's default, nectl's own Nitro-ready kernel (drivers
# built in, the MP table parser, virtio_mmio command-line devices), and
# Debian's cloud kernel (--debian-kernel), which has neither and finds vsock
# only through ACPI.
set -u
NECTL=$(readlink -f "${1:?usage: test_vmm_boot.sh nectl nectl-vmm hello}")
VMM=$(readlink -f "${2:?}")
HELLO=$(readlink -f "${3:?}")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
T=$(mktemp -d /tmp/nectl-vmmboot-XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$HERE/../cli/lib.sh"
. "$HERE/rerun.sh"

mkdir -p "$T/root/bin" && cp "$HELLO" "$T/root/bin/hello" && cp /bin/busybox "$T/root/bin/busybox"
# The app also shows how the vsock line (IRQ 5) is programmed: level-triggered
# ("fasteoi"), as the device's held-high line needs, from the DSDT or the MP table.
APP='["/bin/busybox", "sh", "-c", "echo app says $GREETING; busybox grep -a virtio /proc/interrupts; exit 3"]'
build() { # build NAME CMD [build-enclave options]
	local name=$1 cmd=$2
	shift 2
	expect "build $name.eif" 0 "" -- "$NECTL" build-enclave --rootfs "$T/root" --cmd "$cmd" \
		--env GREETING=hi --output-file "$T/$name.eif" --build-time 1700000000 "$@"
}
build hello "$APP"
build off '["/bin/busybox", "poweroff", "-f"]'
build debian "$APP" --debian-kernel
vm_files=(--file "$T/hello.eif:/hello.eif" --file "$T/off.eif:/off.eif" --file "$T/debian.eif:/debian.eif")
# nectl-vmm is dynamically linked: its libraries go into the shell VM too.
shellvm_libs "$VMM"
# Inside: the sections of the log are marked "@@ NAME: status S after T s".
# On Nitro's machine an app's poweroff -f halts the guest (Linux 6.12 falls
# back to halt without a power-off method), so nectl-vmm is stopped from
# outside once the halt is printed and has held for 5 s.
# A 2-vCPU boot that hangs (killed by the timeout) is retried once, with its
# last console lines as the evidence, counted in the closing line: the
# emulated SVM sometimes loses a nested guest bringing up its second vCPU
# (docs/shellvm.md). A second hang fails the checks below.
INNER='run() { name=$1; shift; t=$(date +%s); timeout 180 /nectl-vmm "$@" >/$name.log 2>&1
	st=$?; echo "@@ $name: status $st after $(($(date +%s) - t)) s"; return $st; }
run hello /hello.eif 256 2; st=$?
if [ $st = 124 ] || [ $st = 143 ]; then
	echo "retry - hello: nectl-vmm hung for 180 s (status $st); its last console lines:"
	tail -n 12 /hello.log | sed "s/^/  hung: /"
	run hello /hello.eif 256 2
fi
cat /hello.log
run off --acpi /off.eif 256 1; grep -a "nectl-vmm:\|reboot:\|ACPI: PM\|[Pp]ower" /off.log
run debian /debian.eif 256 1; grep -a "Command line:\|RSDP\|nectl-init: heartbeat\|nectl-vmm:" /debian.log
/nectl-vmm /off.eif 256 1 >/nitro-off.log 2>&1 & pid=$!; t=$(date +%s)
while [ $(($(date +%s) - t)) -lt 180 ] && ! grep -q "System halted" /nitro-off.log; do
	sleep 1; done
sleep 5; kill -0 $pid 2>/dev/null && echo "@@ nitro-off: still running 5 s after the halt"
kill $pid; grep -a "reboot:\|nectl-init: running\|nectl-vmm:" /nitro-off.log
exit 0'
run_vm() {
	start=$(date +%s)
	"$ROOT/scripts/shellvm.sh" --timeout 900 --mem 2G "${files[@]}" --file "$VMM:/nectl-vmm" \
		"${vm_files[@]}" -- sh -c "$INNER" >"$T/console.log" 2>"$T/err.log"
	rc=$?
}
run_vm
rerun_dead_vm "$T/err.log"
echo "shell VM run: status $rc after $(($(date +%s) - start)) s"
grep -a '^@@' "$T/console.log" | sed 's/^/  /'
[ "$rc" -ne 0 ] && tail -5 "$T/err.log" | sed 's/^/  shellvm: /'
check_eq "the shell VM ran to the end" "$rc" 0
grep -a '^retry - \|^  hung: ' "$T/console.log"
retried=$((retried + $(grep -ac '^retry - ' "$T/console.log")))
# section NAME: the console lines between "@@ NAME" and the next marker
# (a retried run's evidence is not part of its section)
section() { tr -d '\r' <"$T/console.log" | awk -v n="@@ $1:" 'index($0, n) == 1 { on = 1; next } /^@@ / { on = 0 } /^retry - |^  hung: / { next } on'; }
has() { grep -qa -- "$2" <(section "$1"); }
claim() { # claim TEXT SECTION PATTERN...: all patterns in the section
	local text=$1 sec=$2
	shift 2
	for p in "$@"; do
		has "$sec" "$p" || { bad "$text (no '$p' in $sec)"; return; }
	done
	ok "$text"
}

# hello: the whole way to the app and back, nectl's kernel on Nitro's machine
# with 2 vCPUs: CPUs and the I/O APIC from the MP table, vsock from the cmdline.
grep -a -A300 '^@@ hello:' "$T/console.log" |
	grep -E 'Hypervisor detected|MP-table|Brought up|IOAPIC\[|virtio-mmio|Run /init|nectl-init|app says|reboot:|nectl-vmm:|IO-APIC' |
	head -40 | sed 's/^/  console: /'
claim "nectl-vmm ended with the guest's reset" hello "guest stopped: reset"
grep -qa "^@@ hello: status 0 " "$T/console.log" && ok "nectl-vmm's status is 0" || bad "nectl-vmm's status is 0"
claim "the guest sees KVM (kvmclock)" hello "Hypervisor detected: KVM"
claim "no ACPI: the kernel finds no RSDP" hello "A valid RSDP was not found"
claim "the kernel finds the MP table at 0x9fc00" hello \
	"found SMP MP-table at \[mem 0x0009fc00-0x0009fc0f\]"
claim "...both vCPUs and the I/O APIC (id 2, version 0x11) from it" hello \
	"Processor #1" "IOAPIC\[0\]: apic_id 2, version 17, address 0xfec00000, GSI 0-23" \
	"smp: Brought up 1 node, 2 CPUs"
claim "the appended vsock entry ends the kernel's command line" hello \
	"Command line: .*random.trust_cpu=on virtio_mmio.device=4K@0xd0000000:5$"
claim "...and the kernel registers the device from it" hello \
	"virtio-mmio: Registering device virtio-mmio.0 at 0xd0000000-0xd0000fff, IRQ 5."
claim "the vsock line (IRQ 5) is level-triggered, from the MP table" hello "IO-APIC *5-fasteoi *virtio0"
claim "the device answered the heartbeat" hello "nectl-vmm: heartbeat answered"
claim "init saw the answer" hello "nectl-init: heartbeat answered"
claim "the app ran with its env" hello "app says hi"
claim "exit status reported" hello "nectl-init: app exited with status 3"
claim "the machine saw the driver reach DRIVER_OK" hello \
	"nectl-vmm: vsock device (virtio_mmio.device=4K@0xd0000000:5): driver-ok"
# off: the ACPI option's S5 power-off (this one needs ACPI with any kernel).
section off | sed 's/^/  power-off run: /'
grep -qa "^@@ off: status 0 " "$T/console.log" && has off "guest stopped: power-off" &&
	ok "an app's poweroff -f ends the run as an ACPI power-off (--acpi)" ||
	bad "an app's poweroff -f ends the run as an ACPI power-off (--acpi)"
# debian: Debian's kernel on Nitro's machine, as it would fare on Nitro.
section debian | sed 's/^/  debian run: /'
claim "Nitro's machine: no ACPI (the kernel finds no RSDP)" debian "A valid RSDP was not found"
claim "Nitro's machine: the device is announced on the cmdline" debian \
	"Command line: .*random.trust_cpu=on virtio_mmio.device=4K@0xd0000000:5$"
claim "Debian's kernel never probes it: the machine says never-probed" debian \
	"nectl-vmm: vsock device (virtio_mmio.device=4K@0xd0000000:5): never-probed, driver status 0x0"
claim "...and its init, without vsock, reboots" debian "nectl-init: heartbeat: cannot connect" \
	"guest stopped: reset"
section nitro-off | sed 's/^/  nitro power-off run: /'
grep -qa "^@@ nitro-off: still running 5 s after the halt" "$T/console.log" &&
	has nitro-off "reboot: Power off not available: System halted instead" &&
	ok "Nitro's machine: an app's poweroff -f halts the guest (no ACPI power-off); it does not end" ||
	bad "Nitro's machine: an app's poweroff -f halts the guest (no ACPI power-off); it does not end"
summary

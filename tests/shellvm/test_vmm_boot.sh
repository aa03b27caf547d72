#!/usr/bin/env bash
# nectl's own hypervisor boots an unmodified EIF: Linux from the EIF in enclave
# memory, nectl's init and its modules, the boot heartbeat answered by nectl's
# virtio-vsock device, the app (busybox sh) run with its exit status reported,
# then reboot=k caught as the enclave's end; a second EIF whose app powers
# off (ACPI S5 through the FADT's sleep control register, with the ACPI
# option) ends the run as a power-off. On Nitro's machine (the default: the
# device announced only by the virtio_mmio.device= entry appended to the
# cmdline, an MP table, no ACPI) Debian's cloud kernel never probes the vsock
# device, and the machine says so. Runs inside the TCG shell VM, whose
# /dev/kvm can run Linux.
#
# Kernels. Debian's cloud kernel, build-enclave's default today, has neither
# virtio_mmio command-line devices nor an MP table parser: it finds vsock
# only through ACPI. DEBIAN_ACPI marks the runs that need the ACPI option for
# that reason alone; when build-enclave's default kernel is nectl's, it
# becomes empty. debian.eif names Debian's kernel explicitly: its check stays
# true whatever the default. The checks of Nitro's machine itself (both
# vCPUs from the MP table, the cmdline device, poweroff halting) need a
# kernel that boots there: until the default is one, they run only when
# NECTL_TEST_NITRO_KERNEL names its bzImage (and
# NECTL_TEST_NITRO_KERNEL_CONFIG its .config).
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

DEBIAN_ACPI=--acpi # (Debian kernel) drop when the default kernel is nectl's
NITRO_KERNEL=${NECTL_TEST_NITRO_KERNEL:-}

"$NECTL" kernel fetch >"$T/kernel.json" || { echo "0 passed, 1 failed"; exit 1; }
debian_kernel=(--kernel "$(json "$T/kernel.json" "j['Kernel']")"
	--kernel-config "$(json "$T/kernel.json" "j['KernelConfig']")"
	--modules-dir "$(json "$T/kernel.json" "j['ModulesDir']")")
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
build debian "$APP" "${debian_kernel[@]}"
vm_files=(--file "$T/hello.eif:/hello.eif" --file "$T/off.eif:/off.eif" --file "$T/debian.eif:/debian.eif")
if [ -n "$NITRO_KERNEL" ]; then
	nk=(--kernel "$NITRO_KERNEL" --kernel-config "${NECTL_TEST_NITRO_KERNEL_CONFIG:?}")
	build nitro "$APP" "${nk[@]}"
	build nitro-off '["/bin/busybox", "poweroff", "-f"]' "${nk[@]}"
	vm_files+=(--file "$T/nitro.eif:/nitro.eif" --file "$T/nitro-off.eif:/nitro-off.eif")
fi
# nectl-vmm is dynamically linked: its libraries go into the shell VM too.
files=()
for lib in $(ldd "$VMM" | grep -o '/[^ ]*'); do
	files+=(--file "$(readlink -f "$lib"):$lib")
done
# Inside: the sections of the log are marked "@@ NAME: status S after T s".
# On Nitro's machine an app's poweroff -f halts the guest (Linux 6.12 falls
# back to halt without a power-off method), so nectl-vmm is stopped from
# outside once the halt is printed and has held for 5 s.
INNER='run() { name=$1; shift; t=$(date +%s); timeout 180 /nectl-vmm "$@" >/$name.log 2>&1
	echo "@@ $name: status $? after $(($(date +%s) - t)) s"; }
run hello '"$DEBIAN_ACPI"' /hello.eif 256 1; cat /hello.log
run off --acpi /off.eif 256 1; grep -a "nectl-vmm:\|reboot:\|ACPI: PM\|[Pp]ower" /off.log
run debian /debian.eif 256 1; grep -a "Command line:\|RSDP\|nectl-init: heartbeat\|nectl-vmm:" /debian.log
if [ -e /nitro.eif ]; then
	run nitro /nitro.eif 256 2; cat /nitro.log
	/nectl-vmm /nitro-off.eif 256 1 >/nitro-off.log 2>&1 & pid=$!; t=$(date +%s)
	while [ $(($(date +%s) - t)) -lt 180 ] && ! grep -q "System halted" /nitro-off.log; do
		sleep 1; done
	sleep 5; kill -0 $pid 2>/dev/null && echo "@@ nitro-off: still running 5 s after the halt"
	kill $pid; grep -a "reboot:\|nectl-init: running\|nectl-vmm:" /nitro-off.log
fi
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
# section NAME: the console lines between "@@ NAME" and the next marker
section() { tr -d '\r' <"$T/console.log" | awk -v n="@@ $1:" 'index($0, n) == 1 { on = 1; next } /^@@ / { on = 0 } on'; }
has() { grep -qa -- "$2" <(section "$1"); }
claim() { # claim TEXT SECTION PATTERN...: all patterns in the section
	local text=$1 sec=$2
	shift 2
	for p in "$@"; do
		has "$sec" "$p" || { bad "$text (no '$p' in $sec)"; return; }
	done
	ok "$text"
}

# hello: the whole way to the app and back, on Debian's kernel with ACPI today.
grep -a -A200 '^@@ hello:' "$T/console.log" | grep -E 'Hypervisor detected|Run /init|nectl-init|app says|reboot:|nectl-vmm:|IO-APIC' |
	head -40 | sed 's/^/  console: /'
claim "nectl-vmm ended with the guest's reset" hello "guest stopped: reset"
grep -qa "^@@ hello: status 0 " "$T/console.log" && ok "nectl-vmm's status is 0" || bad "nectl-vmm's status is 0"
claim "the guest sees KVM (kvmclock)" hello "Hypervisor detected: KVM"
# (Debian kernel) its drivers are modules that init loads; nectl's kernel
# builds them in.
[ -n "$DEBIAN_ACPI" ] &&
	for m in virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport nsm; do
		claim "module $m loaded" hello "nectl-init: loaded module $m\b"
	done
claim "the device answered the heartbeat" hello "nectl-vmm: heartbeat answered"
claim "init saw the answer" hello "nectl-init: heartbeat answered"
claim "the app ran with its env" hello "app says hi"
claim "exit status reported" hello "nectl-init: app exited with status 3"
claim "the appended vsock entry ends the kernel's command line" hello \
	"Command line: .*random.trust_cpu=on virtio_mmio.device=4K@0xd0000000:5$"
claim "the vsock line (IRQ 5) is level-triggered" hello "IO-APIC *5-fasteoi *virtio0"
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
if [ -n "$NITRO_KERNEL" ]; then
	section nitro | grep -E 'MP-table|MPTABLE|Processor|IOAPIC|Brought up|virtio|heartbeat|app|nectl-vmm' |
		sed 's/^/  nitro run: /'
	claim "a Nitro kernel finds the MP table at 0x9fc00" nitro \
		"found SMP MP-table at \[mem 0x0009fc00-0x0009fc0f\]"
	claim "...both vCPUs and the I/O APIC (id 2, version 0x11) from it" nitro \
		"Processor #1" "IOAPIC\[0\]: apic_id 2, version 17, address 0xfec00000, GSI 0-23" \
		"smp: Brought up 1 node, 2 CPUs"
	claim "...the vsock device from its cmdline entry" nitro \
		"virtio-mmio: Registering device virtio-mmio.0 at 0xd0000000-0xd0000fff, IRQ 5."
	claim "...on a level-triggered line from the MP table" nitro "IO-APIC *5-fasteoi *virtio0"
	claim "...and boots to its app on Nitro's machine" nitro "nectl-init: heartbeat answered" \
		"app says hi" "guest stopped: reset" "vsock device (virtio_mmio.device=4K@0xd0000000:5): driver-ok"
	section nitro-off | sed 's/^/  nitro power-off run: /'
	grep -qa "^@@ nitro-off: still running 5 s after the halt" "$T/console.log" &&
		has nitro-off "reboot: Power off not available: System halted instead" &&
		ok "Nitro's machine: an app's poweroff -f halts the guest (no ACPI power-off); it does not end" ||
		bad "Nitro's machine: an app's poweroff -f halts the guest (no ACPI power-off); it does not end"
else
	echo "skip - the checks of Nitro's machine with a kernel that boots there (set NECTL_TEST_NITRO_KERNEL)"
fi
summary

#!/usr/bin/env bash
# nectl's own hypervisor boots an unmodified EIF: Linux from the EIF in enclave
# memory, nectl's init and its modules, the boot heartbeat answered by nectl's
# virtio-vsock device, the app (busybox sh) run with its exit status reported,
# then reboot=k caught as the enclave's end; a second EIF whose app powers
# off (ACPI S5 through the FADT's sleep control register) ends the run as a
# power-off. Runs inside the TCG shell VM,
# whose /dev/kvm can run Linux.
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
expect "build the EIF" 0 "" -- "$NECTL" build-enclave --rootfs "$T/root" \
	--cmd '["/bin/busybox", "sh", "-c", "echo app says $GREETING; exit 3"]' --env GREETING=hi \
	--output-file "$T/hello.eif" --build-time 1700000000
expect "build the power-off EIF" 0 "" -- "$NECTL" build-enclave --rootfs "$T/root" \
	--cmd '["/bin/busybox", "poweroff", "-f"]' --output-file "$T/off.eif" --build-time 1700000000
# nectl-vmm is dynamically linked: its libraries go into the shell VM too.
files=()
for lib in $(ldd "$VMM" | grep -o '/[^ ]*'); do
	files+=(--file "$(readlink -f "$lib"):$lib")
done
run_vm() {
	start=$(date +%s)
	"$ROOT/scripts/shellvm.sh" --timeout 300 --mem 2G "${files[@]}" --file "$VMM:/nectl-vmm" \
		--file "$T/hello.eif:/hello.eif" --file "$T/off.eif:/off.eif" -- sh -c \
		'/nectl-vmm /hello.eif 256 1; rc=$?; timeout 180 /nectl-vmm /off.eif 256 1 >/off.log 2>&1
		 echo "@@ power-off run: status $?"; grep -a "nectl-vmm:\|reboot:\|ACPI: PM\|power" /off.log
		 exit $rc' >"$T/console.log" 2>"$T/err.log"
	rc=$?
}
run_vm
rerun_dead_vm "$T/err.log"
echo "shell VM run: status $rc after $(($(date +%s) - start)) s"
grep -E 'Hypervisor detected|Run /init|nectl-init|app says|reboot:|nectl-vmm:' "$T/console.log" | sed 's/^/  console: /'
[ "$rc" -ne 0 ] && tail -5 "$T/err.log" | sed 's/^/  shellvm: /'
check_eq "nectl-vmm ended with the guest's reset" "$rc" 0
grep -q "Hypervisor detected: KVM" "$T/console.log" && ok "the guest sees KVM (kvmclock)" || bad "the guest sees KVM (kvmclock)"
for m in virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport nsm; do
	grep -q "nectl-init: loaded module $m\b" "$T/console.log" && ok "module $m loaded" || bad "module $m loaded"
done
grep -q "nectl-vmm: heartbeat answered" "$T/console.log" && ok "the device answered the heartbeat" || bad "the device answered the heartbeat"
grep -q "nectl-init: heartbeat answered" "$T/console.log" && ok "init saw the answer" || bad "init saw the answer"
grep -q "app says hi" "$T/console.log" && ok "the app ran with its env" || bad "the app ran with its env"
grep -q "nectl-init: app exited with status 3" "$T/console.log" && ok "exit status reported" || bad "exit status reported"
grep -q "guest stopped: reset" "$T/console.log" && ok "reboot=k seen as the enclave's end" || bad "reboot=k seen as the enclave's end"
grep -a "@@ power-off\|power-off\|Power down" "$T/console.log" | sed 's/^/  power-off run: /'
grep -q "@@ power-off run: status 0" "$T/console.log" && grep -q "guest stopped: power-off" "$T/console.log" &&
	ok "an app's poweroff -f ends the run as an ACPI power-off" ||
	bad "an app's poweroff -f ends the run as an ACPI power-off"
summary

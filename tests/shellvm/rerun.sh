# Sourced by the shell-VM tests (after tests/cli/lib.sh), with skip_without_shellvm
# and shellvm_libs below. rerun_dead_vm
# ERRFILE counts the shell VM's own boot retries (scripts/shellvm.sh says
# "retrying" on stderr) and calls the caller's run_vm (which sets rc) up to
# twice more while rc is 125. 125 means the shell VM itself died (its kernel,
# under QEMU's emulated SVM; see docs/shellvm.md), not a check. Every retry
# is printed with its evidence and counted in `retried`, which the closing
# line shows.
note_vm_retries() {
	local n
	n=$(grep -ac 'retrying (' "$1")
	[ "$n" -gt 0 ] || return 0
	grep -a 'retrying (' "$1" | sed 's/^/retry - shell VM boot: /'
	retried=$((retried + n))
}

rerun_dead_vm() {
	local again
	note_vm_retries "$1"
	for again in 1 2; do
		[ "$rc" -eq 125 ] || return 0
		echo "retry - the shell VM died (status 125): running it again ($again of 2); its last kernel lines:"
		grep -a 'Kernel panic\|RIP:\|Call Trace\|BUG:\|Oops' "$1" | head -8 | sed 's/^/  shellvm died: /'
		# The serial console's last lines and what shellvm.sh concluded
		# (its kernel-message dump from the second port comes from boot
		# when userspace died first: not repeated here).
		grep -av '^  k| ' "$1" | tail -n 8 | sed 's/^/  shellvm stderr: /'
		# A stall has no panic: the kernel's own last messages say most.
		grep -aq 'the VM stalled' "$1" &&
			grep -a '^  k| ' "$1" | tail -n 10 | sed 's/^/  shellvm stalled: /'
		retried=$((retried + 1))
		run_vm
		note_vm_retries "$1"
	done
}

# skip_without_shellvm: exits 77 (meson's "skipped") when the shell VM's
# prerequisites (qemu, busybox-static, a cached kernel) are absent.
skip_without_shellvm() {
	local have_kernel=0
	[ -n "${SHELLVM_KERNEL:-}" ] && have_kernel=1
	ls -d /var/cache/nectl/kernels/*/ >/dev/null 2>&1 && have_kernel=1
	if ! command -v qemu-system-x86_64 >/dev/null ||
		[ ! -x "${SHELLVM_BUSYBOX:-/bin/busybox}" ] || [ "$have_kernel" = 0 ]; then
		echo "skipped: needs qemu-system-x86_64, busybox-static and a cached kernel"
		exit 77
	fi
}

# shellvm_libs BINARY: sets `files` to the --file options that carry a
# dynamically linked binary's libraries into the shell VM, at their paths.
shellvm_libs() {
	local lib
	files=()
	for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
		files+=(--file "$(readlink -f "$lib"):$lib")
	done
}

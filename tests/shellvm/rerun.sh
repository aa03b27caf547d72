# Sourced by the shell-VM tests: rerun_dead_vm ERRFILE calls the caller's
# run_vm (which sets rc) up to twice more while rc is 125. 125 means the
# shell VM itself died (its kernel, under QEMU's emulated SVM; see
# docs/shellvm.md), not a check: said, then run again.
rerun_dead_vm() {
	local again
	for again in 1 2; do
		[ "$rc" -eq 125 ] || return 0
		grep -a 'Kernel panic\|RIP:' "$1" | head -3 | sed 's/^/  shellvm died: /'
		echo "the shell VM died (status 125): running it again ($again of 2)"
		run_vm
	done
}

#!/usr/bin/env bash
# The native launch path (run-enclave without --emulate) end to end on the
# NE driver model inside the TCG shell VM, whose /dev/kvm runs the enclave:
# the checks are in native_sim_inner.sh.
# Usage: tests/shellvm/test_native_sim.sh NECTL HELLO XFER
set -u
NECTL=$(readlink -f "${1:?usage: test_native_sim.sh nectl hello xfer}")
HELLO=$(readlink -f "${2:?}")
XFER=$(readlink -f "${3:?}")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
T=$(mktemp -d /tmp/nectl-native-sim-XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$HERE/../cli/lib.sh"
. "$HERE/rerun.sh"
skip_without_shellvm

mkdir -p "$T/hello/bin" && cp "$HELLO" "$T/hello/bin/hello"
expect "build hello.eif" 0 "" -- "$NECTL" build-enclave --rootfs "$T/hello" --cmd /bin/hello \
	--output-file "$T/hello.eif" --build-time 1700000000
shellvm_libs "$NECTL"
run_vm() {
	local start
	start=$(date +%s)
	"$ROOT/scripts/shellvm.sh" --timeout 900 --mem 2G "${files[@]}" --file "$NECTL:/nectl" \
		--module net/vmw_vsock/vsock --module net/vmw_vsock/vmw_vsock_virtio_transport_common \
		--module net/vmw_vsock/vsock_loopback --file "$XFER:/xfer" \
		--file "$T/hello.eif:/hello.eif" --file "$HERE/native_sim_inner.sh:/inner.sh" \
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

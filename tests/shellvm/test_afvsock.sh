#!/usr/bin/env bash
# The AF_VSOCK transport's unit tests (tests/unit/test_afvsock.c) where they
# can all run: inside the shell VM, whose kernel gets vsock_loopback (CID 1),
# which this host's kernel lacks. Every test must pass there; none may be
# skipped for want of loopback.
#
# Usage: tests/shellvm/test_afvsock.sh TEST_AFVSOCK
# Ends with "N passed, N failed"; exits 77 (meson's "skipped") when the
# shell VM's prerequisites (qemu, busybox-static, a cached kernel) are absent.
set -u
TEST=$(readlink -f "${1:?usage: test_afvsock.sh test_afvsock}")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(readlink -f "$HERE/../..")
T=$(mktemp -d "${TMPDIR:-/tmp}/nectl-afvsock-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
. "$HERE/../cli/lib.sh"
. "$HERE/rerun.sh"

skip_without_shellvm

# The test is dynamically linked (cmocka, libcrypto...): its libraries too.
shellvm_libs "$TEST"
run_vm() {
	local start
	start=$(date +%s)
	"$ROOT/scripts/shellvm.sh" --timeout 300 --module net/vmw_vsock/vsock \
		--module net/vmw_vsock/vmw_vsock_virtio_transport_common \
		--module net/vmw_vsock/vsock_loopback "${files[@]}" --file "$TEST:/test_afvsock" \
		-- /test_afvsock >"$T/log" 2>"$T/err"
	rc=$?
	echo "shell VM run: status $rc after $(($(date +%s) - start)) s"
}
run_vm
rerun_dead_vm "$T/err"
sed 's/^/  | /' "$T/log"
[ "$rc" -ne 0 ] && tail -5 "$T/err" | sed 's/^/  shellvm: /'
check_eq "test_afvsock's exit status" "$rc" 0
grep -q 'no vsock loopback' "$T/log" && bad "vsock loopback works in the shell VM" ||
	ok "vsock loopback works in the shell VM"
n=$(grep -c '^\[ *OK *\]' "$T/log")
runs=$(grep -c '^\[ RUN *\]' "$T/log")
[ "$n" -gt 0 ] && [ "$n" = "$runs" ] && ok "all $runs tests passed" || bad "all tests passed ($n of $runs)"
grep -q '^\[ *SKIPPED *\]' "$T/log" && bad "no test skipped" || ok "no test skipped"
summary

#!/bin/bash
# End-to-end test of scripts/shellvm.sh: boots the shell VM under TCG and
# checks that /dev/kvm inside it really runs guest code (tools/kvmcheck),
# that COMMAND's exit status comes back, and that arguments survive quoting.
#
# Usage: tests/shellvm/test_shellvm.sh [KVMCHECK]
#   KVMCHECK: a static kvmcheck binary (default: build/tools/kvmcheck, else
#   built here from tools/kvmcheck.c with gcc -static).
# Ends with "N passed, N failed"; exits 77 (meson's "skipped") when the
# shell VM's prerequisites (qemu, busybox-static, a cached kernel) are absent.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
shellvm=$here/scripts/shellvm.sh
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_shellvm.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
ko() { fail=$((fail + 1)); echo "FAIL - $1"; [ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err"; }

. "$here/tests/shellvm/rerun.sh"
skip_without_shellvm

kvmcheck=${1:-$here/build/tools/kvmcheck}
if [ ! -x "$kvmcheck" ]; then
	kvmcheck=$tmp/kvmcheck
	gcc -std=c11 -D_GNU_SOURCE -O2 -static -o "$kvmcheck" "$here/tools/kvmcheck.c" ||
		{ echo "cannot build kvmcheck"; echo "0 passed, 1 failed"; exit 1; }
fi

# 1. KVM inside the shell VM runs a real-mode guest that prints "OK".
out=$("$shellvm" --file "$kvmcheck:/kvmcheck" -- /kvmcheck 2>"$tmp/err")
rc=$?
[ "$rc" = 0 ] && ok "kvmcheck exit status 0" || ko "kvmcheck exit status 0 (got $rc)"
printf '%s\n' "$out" | grep -qx 'OK' && ok "guest-in-guest printed OK" ||
	ko "guest-in-guest printed OK (output: $out)"
printf '%s\n' "$out" | grep -qx 'kvmcheck: ok' && ok "kvmcheck: ok" ||
	ko "kvmcheck: ok (output: $out)"

# 2. Exit status, argument quoting, output without a final newline, files.
printf 'payload\n' >"$tmp/data.txt"
out=$("$shellvm" --file "$tmp/data.txt:/srv/data.txt" -- \
	sh -c 'cat /srv/data.txt; printf "%s|" "$@"; exit 7' sh "a b" "it's" '$HOME' 2>"$tmp/err")
rc=$?
[ "$rc" = 7 ] && ok "exit status passed through" || ko "exit status passed through (got $rc)"
want="payload
a b|it's|\$HOME|"
[ "$out" = "$want" ] && ok "output, quoting and --file" ||
	ko "output, quoting and --file (got: $(printf '%s' "$out" | od -c | head -5))"

# 3. The VM's kernel panics while COMMAND runs (it neither reboots nor exits
# by itself here): 125 within a minute, not the timeout's 124, and no rerun.
# A panic-like line in the command's own output, followed by more of it, is
# not mistaken for one.
t0=$(date +%s)
out=$("$shellvm" --timeout 300 -- sh -c \
	'echo "[ 1.0] Kernel panic - not syncing: quoted"; echo more; sleep 40; echo alive
	 echo c >/proc/sysrq-trigger' \
	2>"$tmp/err")
rc=$?
t=$(($(date +%s) - t0))
[ "$rc" = 125 ] && [ "$t" -lt 200 ] && ok "a panic while the command runs: 125 after ${t} s" ||
	ko "a panic while the command runs: 125 soon (got $rc after $t s)"
[ "$(printf '%s\n' "$out" | grep -c '^alive$')" = 1 ] &&
	ok "the command's own panic-like line did not end it; no rerun" ||
	ko "the command's own panic-like line did not end it; no rerun (output: $out)"

# 4. An extra module (--module), then a VM that stalls while the command
# runs (QEMU stopped, as a shell VM whose kernel no longer schedules): its
# ticks stop, and it is reported dead (125) with its kernel's last messages
# within the stall timeout, not after the command's own timeout.
SHELLVM_PIDFILE=$tmp/qemu.pid SHELLVM_STALL_TIMEOUT=20 "$shellvm" --timeout 600 \
	--module net/vmw_vsock/vsock -- sh -c 'grep -c "^vsock " /proc/modules; sleep 500' \
	>"$tmp/out" 2>"$tmp/err" &
svm=$!
for i in $(seq 180); do grep -q . "$tmp/out" && break; sleep 1; done
[ "$(cat "$tmp/out")" = 1 ] && ok "--module loads the module before the command" ||
	ko "--module loads the module before the command (output: $(cat "$tmp/out"))"
t0=$(date +%s)
kill -STOP "$(cat "$tmp/qemu.pid")"
wait "$svm"
rc=$?
t=$(($(date +%s) - t0))
[ "$rc" = 125 ] && [ "$t" -lt 60 ] && grep -q "the VM stalled" "$tmp/err" &&
	grep -q "its last sign of life: SHELLVM-ALIVE" "$tmp/err" && grep -q "k| " "$tmp/err" &&
	ok "a stalled VM: 125 after ${t} s, with its kernel's last messages" ||
	ko "a stalled VM: 125 soon, with evidence (got $rc after $t s)"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

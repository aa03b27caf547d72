# Shared by the command-line test scripts: counters, expectations, JSON access.
# The caller sets T (a scratch directory) before using expect.
pass=0
fail=0
# Runs the emulator lost and the test ran again (shell-VM tests only): each is
# printed with its evidence where it happens and counted in the closing line,
# so a retry can never pass for a clean run.
retried=0

ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }

# expect NAME STATUS FRAGMENT -- command...: exit status and a stderr fragment.
expect() {
	local name=$1 status=$2 frag=$3
	shift 4
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ "$rc" -ne "$status" ]; then
		bad "$name: exit $rc, expected $status ($(head -c 300 "$T/err"))"
	elif [ -n "$frag" ] && ! grep -qF -- "$frag" "$T/err"; then
		bad "$name: stderr lacks '$frag': $(head -c 300 "$T/err")"
	else
		ok "$name"
	fi
}

# json FILE EXPR: evaluates a Python expression over the parsed JSON `j`.
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', expected '$3'"; fi
}

# summary: the closing line the test runner reads; exit status follows it.
summary() {
	if [ "$retried" -gt 0 ]; then
		echo "$pass passed, $fail failed, $retried retried"
	else
		echo "$pass passed, $fail failed"
	fi
	[ "$fail" -eq 0 ]
}

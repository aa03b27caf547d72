#!/usr/bin/env bash
# xfer checks itself on the host, over Unix and TCP sockets, before the
# enclave tests and benchmarks rely on its verdicts: clean transfers pass,
# and a peer that loses, corrupts or withholds bytes makes it fail.
set -u
XFER=$(readlink -f "${1:?usage: test_xfer.sh xfer}")
HERE=$(dirname "$(readlink -f "$0")")
T=$(mktemp -d /tmp/nectl-xfer-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
. "$HERE/../cli/lib.sh"

# wait_for FILE TEXT: servers say when they listen; give them 10 s.
wait_for() {
	for _ in $(seq 100); do
		grep -qF "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# expect_out NAME PATTERN -- command...: status 0 and stdout matching PATTERN.
expect_out() {
	local name=$1 pat=$2
	shift 3
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		bad "$name: exit $rc ($(head -c 300 "$T/err"))"
	elif ! grep -qE -- "$pat" "$T/out"; then
		bad "$name: stdout '$(head -c 300 "$T/out")' does not match '$pat'"
	else
		ok "$name"
	fi
}

# A misbehaving peer on a Unix socket, in Python: MODE is what it gets wrong.
fake_peer() {
	python3 - "$1" "$2" <<'EOF' >"$T/fake-$1.log" 2>&1 &
import os, socket, sys, time
mode, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
if mode in ("badcrc", "short"):
    n = 0
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        n += len(b)
    c.sendall(b"%d deadbeef\n" % n if mode == "badcrc" else b"%d 00000000\n" % (n - 1))
elif mode == "zeros":
    req = c.recv(64)
    c.sendall(bytes(int(req.strip())))
elif mode == "silent":
    time.sleep(30)
c.close()
EOF
	pids+=($!)
	wait_for "$T/fake-$1.log" listening
}

mib=4M
bytes=$((4 << 20))

# --- Unix sockets: a sink-listen, then serve's three services ------------
"$XFER" sink-listen "unix:$T/sink.sock" --count 2 >"$T/sl.log" 2>&1 &
sl=$!
pids+=("$sl")
wait_for "$T/sl.log" "xfer: listening" && ok "sink-listen says it listens" || bad "sink-listen says it listens"
expect_out "send to sink-listen over unix" "^send ok $bytes [0-9a-f]{8} [0-9.]+ MB/s$" -- \
	"$XFER" send "unix:$T/sink.sock" $mib
crc=$(cut -d' ' -f4 "$T/out")
expect_out "K suffix and an odd size" "^send ok 3072 " -- "$XFER" send "unix:$T/sink.sock" 3K
wait "$sl"
check_eq "sink-listen --count 2 exits 0 after two" "$?" 0

# A socket file left behind must not stop the next listener.
"$XFER" sink-listen "unix:$T/sink.sock" --count 1 >"$T/sl2.log" 2>&1 &
pids+=($!)
wait_for "$T/sl2.log" "xfer: listening" && ok "sink-listen replaces a stale socket" || bad "sink-listen replaces a stale socket"
expect_out "send again" "^send ok $bytes $crc " -- "$XFER" send "unix:$T/sink.sock" $mib

mkdir "$T/srv"
"$XFER" serve --unix "$T/srv" >"$T/serve.log" 2>&1 &
pids+=($!)
wait_for "$T/serve.log" "xfer: serving" && ok "serve --unix says it serves" || bad "serve --unix says it serves"
expect_out "send to serve's sink" "^send ok $bytes $crc " -- "$XFER" send "unix:$T/srv/sink" $mib
expect_out "recv from serve's source: the same stream" "^recv ok $bytes $crc [0-9.]+ MB/s$" -- \
	"$XFER" recv "unix:$T/srv/source" $mib
expect_out "recv with a stalled reader" "^recv ok $bytes $crc " -- \
	"$XFER" recv "unix:$T/srv/source" $mib --stall 1
expect_out "recv of nothing" "^recv ok 0 00000000 " -- "$XFER" recv "unix:$T/srv/source" 0
expect_out "echo, 4 concurrent connections" "^echo ok 4 x $bytes$" -- \
	"$XFER" echo "unix:$T/srv/echo" $mib 4

# --- TCP: the same services on three consecutive ports -------------------
base=$((20000 + $$ % 20000))
"$XFER" serve --tcp $base >"$T/serve-tcp.log" 2>&1 &
pids+=($!)
if wait_for "$T/serve-tcp.log" "xfer: serving"; then
	ok "serve --tcp says it serves"
	expect_out "send over tcp" "^send ok $bytes $crc " -- "$XFER" send "tcp:127.0.0.1:$((base + 1))" $mib
	expect_out "recv over tcp (localhost)" "^recv ok $bytes $crc " -- \
		"$XFER" recv "tcp:localhost:$((base + 2))" $mib
	expect_out "echo over tcp, 8 connections" "^echo ok 8 x 1048576$" -- \
		"$XFER" echo "tcp:127.0.0.1:$base" 1M 8
else
	bad "serve --tcp says it serves: $(head -c 300 "$T/serve-tcp.log")"
fi

# --- peers that get it wrong must make xfer fail -------------------------
fake_peer badcrc "$T/badcrc.sock"
expect "a sink replying a wrong CRC fails send" 1 "send FAIL sink got $bytes bytes crc deadbeef" -- \
	"$XFER" send "unix:$T/badcrc.sock" $mib
fake_peer short "$T/short.sock"
expect "a sink that lost a byte fails send" 1 "send FAIL sink got $((bytes - 1)) bytes" -- \
	"$XFER" send "unix:$T/short.sock" $mib
fake_peer zeros "$T/zeros.sock"
expect "a source sending the wrong bytes fails recv" 1 "recv FAIL got $bytes bytes crc" -- \
	"$XFER" recv "unix:$T/zeros.sock" $mib
fake_peer silent "$T/silent.sock"
expect "a silent peer fails recv at --timeout" 1 "recv FAIL timed out after 1 s" -- \
	"$XFER" --timeout 1 recv "unix:$T/silent.sock" $mib
expect "nobody listening fails send" 1 "send FAIL connect unix:$T/none.sock" -- \
	"$XFER" send "unix:$T/none.sock" 1K
expect "a bad address is refused" 1 "bad address 'udp:1:2'" -- "$XFER" send udp:1:2 1K
expect "a bad byte count is refused" 1 "bad byte count '12Q'" -- "$XFER" send "unix:$T/x" 12Q
expect "too many connections are refused" 1 "echo FAIL CONNS must be" -- \
	"$XFER" echo "unix:$T/srv/echo" 1K 100000
lines=$(wc -l <"$T/err")
check_eq "an error is one line on stderr" "$lines" 1
expect "usage without a mode" 1 "usage: xfer" -- "$XFER"
expect_out "now prints nanoseconds" '^[0-9]{19}$' -- "$XFER" now

summary

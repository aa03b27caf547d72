# Runs inside the shell VM (busybox sh): the native launch path end to end on
# the NE driver model (NECTL_NE_DEVICE=sim: 4 cores x 2 threads, pool
# 1-3,5-7), which boots accel/kvm over the donated hugepages. Prints
# "ok - ..." / "FAIL - ..." and "@@done"; test_native_sim.sh counts them.
# Files: /nectl (+ libraries), /hello.eif (the sample app: echoes lines on
# vsock port 5000), /xfer. The kernel has vsock_loopback: the last part runs
# the native parent side (AF_VSOCK) against this shell playing the enclave.
N=/nectl
export NECTL_RUN_DIR=/run/nectl NECTL_NE_DEVICE=sim
T=/tmp/sim
mkdir -p $T
ok() { echo "ok - $1"; }
bad() { echo "FAIL - $1"; }
has() { grep -q -- "$2" "$1"; }
field() { sed -n "s/^ *\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1" | head -1; }
hp_free() { sed -n 's/^HugePages_Free: *//p' /proc/meminfo; }
gone() { [ ! -e /proc/$1 ] || grep -q '^State:.*Z' /proc/$1/status; }
echo 128 >/proc/sys/vm/nr_hugepages
free0=$(hp_free)
echo "hugepages free: $free0"
run() { # run TAG ARGS...: one launch (TCG is slow: nitro-cli's minimum timeout)
	tag=$1
	shift
	$N run-enclave --eif-path /hello.eif --heartbeat-timeout 180 "$@" >$T/$tag.json 2>$T/$tag.err
}

# One enclave through the native sequence: heartbeat, describe, forward,
# console, terminate, hugepages back.
run a --memory 128 --cpu-count 2 --debug-mode --verbose --forward-into-enclave tcp:127.0.0.1:5100=5000
rc=$?
cat $T/a.err
[ $rc = 0 ] && ok "run-enclave on the simulated device returned after the heartbeat" ||
	bad "run-enclave on the simulated device: status $rc"
has $T/a.err "Enclave memory: hugepages" && ok "--verbose names the memory" ||
	bad "--verbose names the memory"
pid=$(field $T/a.json ProcessID)
id=$(field $T/a.json EnclaveID)
echo "$id" | grep -Eq '^i-0000000000000000-enc[0-9a-f]{1,16}$' &&
	ok "nitro-cli's enclave ID, from the device's slot uid ($id)" || bad "enclave ID: $id"
$N describe-enclaves >$T/d.json
has $T/d.json "\"EnclaveID\": \"$id\"" && ok "describe knows the enclave by that ID" ||
	bad "describe knows the enclave by that ID"
cat $T/d.json
for k in '"Mode": "simulated"' '"MemoryPlan": "64 x 2 MiB on node 0 (128 MiB)"' \
	'"MemoryBacking": "hugepages"' '"State": "RUNNING"' '"EnclaveCID": 16'; do
	has $T/d.json "$k" && ok "describe shows $k" || bad "describe shows $k"
done
tr -d ' \n' <$T/d.json | grep -q '"CPUIDs":\[1,5\]' && ok "the device chose a full core (CPUs 1 and 5)" ||
	bad "the device chose a full core (CPUs 1 and 5)"
[ "$(hp_free)" = $((free0 - 64)) ] && ok "64 hugepages donated" || bad "64 hugepages donated ($(hp_free) free)"
for i in $(seq 60); do
	$N console --enclave-name hello --disconnect-timeout 2 2>/dev/null | grep -q "listening on vsock port 5000" && break
done
(echo "hello, simulated"; sleep 8) | timeout 30 nc 127.0.0.1 5100 >$T/echo.out 2>&1
has $T/echo.out "^hello, simulated" && ok "the sample app echoes through a forward" ||
	bad "the sample app echoes through a forward: $(cat $T/echo.out)"
$N console --enclave-name hello --disconnect-timeout 2 >$T/c.out 2>&1
has $T/c.out "Hello from the nectl sample enclave" && ok "console captured" || bad "console captured"
$N terminate-enclave --enclave-name hello >$T/t.json 2>&1 && has $T/t.json '"Terminated": true' &&
	ok "terminate-enclave" || bad "terminate-enclave: $(cat $T/t.json)"
gone "$pid" && ok "the supervisor is gone" || bad "the supervisor is gone"
[ "$(hp_free)" = "$free0" ] && ok "every hugepage back after terminate" || bad "hugepages back ($(hp_free))"

# The driver's rules, with nitro-cli's E-codes: half a core (E29, decoded),
# a CPU outside the pool, less than the 4x EIF rule (E26).
run b --memory 128 --cpu-count 1
rc=$?
[ $rc = 29 ] && has $T/b.err "NE_ERR_FULL_CORES_NOT_USED" && ok "one thread of a core: E29 with the driver's error" ||
	bad "one thread of a core: $rc $(cat $T/b.err)"
run c --memory 128 --cpu-ids 0,4
rc=$?
[ $rc = 21 ] && has $T/c.err "The CPU 0 is not available in the NE CPU pool" &&
	ok "CPU 0's core: E21, not in the pool (nitro-cli's own check)" ||
	bad "CPU 0's core: $rc $(cat $T/c.err)"
[ "$(hp_free)" = "$free0" ] && ok "refused launches give every hugepage back" || bad "hugepages back ($(hp_free))"
run e --memory 8 --cpu-count 2
rc=$?
[ $rc = 26 ] && ok "memory below 4x the EIF: E26" || bad "memory below 4x the EIF: $rc $(cat $T/e.err)"

# SIGKILL of the supervisor: the enclave ends with it, memory comes back.
run f --memory 128 --cpu-ids 2,6
rc=$?
pid=$(field $T/f.json ProcessID)
[ $rc = 0 ] && ok "run-enclave with --cpu-ids 2,6" || bad "run-enclave with --cpu-ids 2,6: $rc $(cat $T/f.err)"
kill -9 "$pid"
for i in $(seq 50); do gone "$pid" && break; sleep 0.2; done
for i in $(seq 50); do [ "$(hp_free)" = "$free0" ] && break; sleep 0.2; done
[ "$(hp_free)" = "$free0" ] && ok "a SIGKILLed supervisor gives every hugepage back" ||
	bad "a SIGKILLed supervisor gives every hugepage back ($(hp_free))"
$N describe-enclaves >$T/d2.json
has $T/d2.json '"EnclaveName"' && bad "stale record left: $(cat $T/d2.json)" || ok "no stale record"
# ... and its cores: the same CPUs can be had again.
run g --memory 128 --cpu-ids 2,6
rc=$?
[ $rc = 0 ] && ok "a SIGKILLed supervisor's CPUs (2, 6) can be had again" ||
	bad "a SIGKILLed supervisor's CPUs (2, 6) again: $rc $(cat $T/g.err)"
$N terminate-enclave --all >/dev/null 2>&1
# The native parent side over AF_VSOCK, end to end: the model with
# "Hypervisor": "loopback" boots nothing; the enclave is this shell at CID 1
# (vsock loopback): xfer serves 5000-5002, says console lines on port
# 10000 + CID, sends its heartbeat and pushes to the parent's port 7000.
X=/xfer
echo '{"Hypervisor": "loopback"}' >$T/lo.json
$X serve >$T/serve.out 2>&1 &
serve=$!
$X --timeout 300 sink-listen unix:$T/hostsink.sock --count 1 >$T/hostsink.out 2>&1 &
sink=$!
sleep 1
NECTL_NE_DEVICE=sim:$T/lo.json $N run-enclave --eif-path /hello.eif --memory 128 --cpu-count 2 \
	--debug-mode --enclave-cid 21 --heartbeat-timeout 60 --enclave-name lo \
	--forward-into-enclave unix:$T/echo.sock=5000 --forward-to-host 7000=unix:$T/hostsink.sock \
	>$T/lo.json.out 2>$T/lo.err &
launcher=$!
$X --timeout 60 say-listen vsock:4294967295:10021 "console line" --count 3 >$T/say.out 2>&1 &
say=$!
sleep 2
$X heartbeat vsock:1:9000 >$T/hb.out 2>&1 && ok "the parent answers the heartbeat on vsock port 9000" ||
	bad "the parent answers the heartbeat: $(cat $T/hb.out)"
wait $launcher
rc=$?
[ $rc = 0 ] && ok "run-enclave returns after the AF_VSOCK heartbeat" ||
	bad "run-enclave after the AF_VSOCK heartbeat: $rc $(cat $T/lo.err)"
$X heartbeat vsock:1:9000 >$T/hb2.out 2>&1 && bad "port 9000 still open after the heartbeat" ||
	ok "port 9000 given up after the heartbeat (the next enclave may boot)"
$X echo unix:$T/echo.sock 1M 4 >$T/lecho.out 2>&1 && ok "into the enclave over AF_VSOCK: 4 x 1 MiB echoed" ||
	bad "into the enclave over AF_VSOCK: $(tail -2 $T/lecho.out)"
$X send vsock:1:7000 4M >$T/lsend.out 2>&1 && ok "to the host over AF_VSOCK: 4 MiB, checksummed" ||
	bad "to the host over AF_VSOCK: $(tail -2 $T/lsend.out)"
for i in $(seq 50); do [ "$($N console --enclave-name lo --disconnect-timeout 1 2>/dev/null | grep -c 'console line')" -ge 3 ] && break; sleep 0.2; done
$N console --enclave-name lo --disconnect-timeout 1 >$T/lc.out 2>&1
has $T/lc.out "console line 1" && has $T/lc.out "console line 3" &&
	ok "the console from (CID, 10000 + enclave CID), across reconnects" ||
	bad "the console over AF_VSOCK: $(head -c 300 $T/lc.out)"
$N describe-enclaves >$T/ld.json
has $T/ld.json '"Mode": "simulated"' && has $T/ld.json '"EnclaveCID": 21' && ok "describe: simulated, CID 21" ||
	bad "describe: $(cat $T/ld.json)"
$N terminate-enclave --enclave-name lo >$T/lt.json 2>&1 && ok "terminate-enclave (loopback)" ||
	bad "terminate-enclave (loopback): $(cat $T/lt.json)"
[ "$(hp_free)" = "$free0" ] && ok "hugepages back (loopback)" || bad "hugepages back (loopback): $(hp_free)"
kill $serve $sink $say 2>/dev/null

# Nobody answers the heartbeat: E36 once the timeout has passed, nothing left.
NECTL_NE_DEVICE=sim:$T/lo.json $N run-enclave --eif-path /hello.eif --memory 64 --cpu-count 2 \
	--heartbeat-timeout 3 --enclave-name silent >$T/s.json 2>$T/s.err
rc=$?
[ $rc = 36 ] && has $T/s.err "no heartbeat" && ok "no heartbeat over AF_VSOCK: E36" ||
	bad "no heartbeat over AF_VSOCK: $rc $(cat $T/s.err)"
[ "$(hp_free)" = "$free0" ] && ok "hugepages back after E36" || bad "hugepages back after E36: $(hp_free)"

# Four enclaves at once on one simulated parent (8 cores x 2 threads): the
# heartbeat port is the parent's, so they boot one at a time (this shell
# answers for each in turn); the CPU pool is the parent's, so they get four
# different cores.
echo '{"Hypervisor": "loopback", "Cores": 8}' >$T/lo8.json
for k in 1 2 3 4; do
	NECTL_NE_DEVICE=sim:$T/lo8.json $N run-enclave --eif-path /hello.eif --memory 64 \
		--cpu-count 2 --heartbeat-timeout 120 --enclave-name four$k >$T/four$k.json \
		2>$T/four$k.err &
	echo $! >$T/four$k.pid
done
beats=0
for i in $(seq 600); do
	$X --timeout 5 heartbeat vsock:1:9000 >/dev/null 2>&1 && beats=$((beats + 1))
	[ $beats -ge 4 ] && break
	sleep 0.1
done
echo "heartbeats answered: $beats"
for k in 1 2 3 4; do
	wait "$(cat $T/four$k.pid)"
	rc=$?
	[ $rc = 0 ] && ok "four at once: enclave $k returned after its heartbeat" ||
		bad "four at once: enclave $k: $rc $(cat $T/four$k.err)"
done
$N describe-enclaves >$T/four.json
[ "$(grep -c '"State": "RUNNING"' $T/four.json)" = 4 ] && ok "four at once: four RUNNING" ||
	bad "four at once: $(grep -c '"State": "RUNNING"' $T/four.json) RUNNING"
cpus=$(tr -d ' \n' <$T/four.json | grep -o '"CPUIDs":\[[0-9,]*\]' | grep -o '[0-9][0-9]*' | sort -n | uniq | wc -l)
[ "$cpus" = 8 ] && ok "four at once: eight distinct CPUs (four full cores)" ||
	bad "four at once: $cpus distinct CPUs: $(tr -d ' \n' <$T/four.json | grep -o '"CPUIDs":\[[0-9,]*\]')"
[ "$(grep -o '"EnclaveCID": [0-9]*' $T/four.json | sort -u | wc -l)" = 4 ] &&
	ok "four at once: four distinct CIDs" || bad "four at once: CIDs not distinct"
$N console --enclave-name four1 >$T/c44.out 2>&1
[ $? = 44 ] && ok "console without --debug-mode: E44" || bad "console without --debug-mode: $(cat $T/c44.out)"
for k in 1 2 3 4; do
	$N terminate-enclave --enclave-name four$k >/dev/null 2>&1 || bad "terminate four$k"
done
[ "$(hp_free)" = "$free0" ] && ok "four at once: every hugepage back" || bad "four at once: hugepages $(hp_free)"
echo "@@done"

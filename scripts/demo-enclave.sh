# The second half of `make demo`, inside the shell VM (busybox sh): the signed
# sample image runs emulated, answers over vsock through a TCP forward, shows
# its console, and is terminated.
N=/nectl
echo "== nectl run-enclave --emulate (the signature is checked; waits for the heartbeat)"
$N run-enclave --emulate --eif-path /hello.eif --memory 256 --cpu-count 1 --debug-mode \
	--verbose --forward-into-enclave tcp:127.0.0.1:5000=5000 || exit 1
echo "== echo over vsock: nc 127.0.0.1 5000"
(echo "hello through vsock"; sleep 5) | timeout 20 nc 127.0.0.1 5000
echo "== nectl describe-enclaves"
$N describe-enclaves
echo "== nectl console (3 s)"
$N console --enclave-name hello --disconnect-timeout 3 | grep -a -v '^\[ '
echo "== nectl terminate-enclave"
$N terminate-enclave --enclave-name hello

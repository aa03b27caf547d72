#!/usr/bin/env bash
# End-to-end tests of the nectl command line: exit codes, JSON, stderr lines,
# atomic outputs. Ends with "N passed, N failed".
set -u
NECTL=${1:?usage: test_cli.sh path/to/nectl}
T=$(mktemp -d /tmp/nectl-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
. "$(dirname "$0")/lib.sh"

# Inputs of the synthetic vector (reference §4.2).
printf KERNEL >"$T/kernel"
printf BOOTSTRAP >"$T/rd0"
printf APP >"$T/rd1"
openssl ecparam -name secp384r1 -genkey -noout -out "$T/key.pem" 2>/dev/null
openssl req -new -x509 -sha384 -key "$T/key.pem" -subj /CN=nectl-test/O=nectl -days 30 \
	-out "$T/cert.pem" 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out "$T/key3.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/key2.pem" 2>/dev/null
openssl req -new -x509 -sha256 -key "$T/key2.pem" -subj /CN=second -days 30 \
	-out "$T/cert2.pem" 2>/dev/null

expect "version" 0 "" -- "$NECTL" --version
grep -q '^nectl ' "$T/out" && ok "version text" || bad "version text"
expect "help" 0 "" -- "$NECTL" --help
for c in build-eif describe-eif sign-eif pcr explain; do
	expect "$c --help" 0 "" -- "$NECTL" "$c" --help
	grep -q "Example" "$T/out" && ok "$c help has an example" || bad "$c help has an example"
	grep -q "^  $c " <("$NECTL" --help) && ok "$c listed in --help" || bad "$c listed in --help"
done

# build-eif reproduces the vector and prints nitro-cli's Measurements.
expect "build vector" 0 "Output file" -- "$NECTL" build-eif --kernel "$T/kernel" \
	--cmdline console=ttyS0 --ramdisk "$T/rd0" --ramdisk "$T/rd1" --output "$T/v.eif" \
	--name t --version 1 --build-time 2024-01-01T00:00:00+00:00 --build-tool x \
	--build-tool-version 0 --img-os Linux --img-kernel 6.6
cp "$T/out" "$T/build.json"
check_eq "vector file sha256" "$(sha256sum "$T/v.eif" | cut -c1-64)" \
	5e724ec81332932f149044bfa27c46ab1dae09f629c484c0745dc679a9c0058e
check_eq "build PCR0" "$(json "$T/build.json" "j['Measurements']['PCR0']")" \
	2f87f4fb26f464489990324c4380bb8a417a10c26c9dbc8fa5d40a7f5edd40e5cbd21b2fe6e25895cf02d7386d066322
check_eq "build HashAlgorithm" "$(json "$T/build.json" "j['Measurements']['HashAlgorithm']")" \
	"Sha384 { ... }"

# describe-eif round trip.
expect "describe vector" 0 "" -- "$NECTL" describe-eif --eif-path "$T/v.eif"
cp "$T/out" "$T/d.json"
check_eq "describe keys" "$(json "$T/d.json" "','.join(j.keys())")" \
	"EifVersion,Measurements,IsSigned,CheckCRC,ImageName,ImageVersion,Metadata,Arch,HeaderFlags,Sections,Kernel"
# The vector's 6-byte "kernel" is no bzImage and no kernel nectl knows.
check_eq "describe kernel unknown" "$(json "$T/d.json" "j['Kernel']")" \
	"{'Release': None, 'Config': None, 'NitroReady': None}"
check_eq "describe PCRs = build PCRs" "$(json "$T/d.json" "j['Measurements']")" \
	"$(json "$T/build.json" "j['Measurements']")"
check_eq "describe CheckCRC" "$(json "$T/d.json" "j['CheckCRC']")" True
check_eq "describe metadata" "$(json "$T/d.json" "(j['ImageName'], j['Metadata']['BuildTime'], j['Metadata']['KernelVersion'], j['Metadata']['DockerInfo'])")" \
	"('t', '2024-01-01T00:00:00+00:00', '6.6', None)"
check_eq "describe sections" "$(json "$T/d.json" "[(s['Type'], s['Offset'], s['Size']) for s in j['Sections']]")" \
	"[('kernel', 548, 6), ('cmdline', 566, 13), ('metadata', 591, 221), ('ramdisk', 824, 9), ('ramdisk', 845, 3)]"
check_eq "describe arch" "$(json "$T/d.json" "j['Arch']")" x86_64

# pcr: {"PCR": SHA384(0^48 || SHA384(file))}.
expect "pcr input" 0 "" -- "$NECTL" pcr --input "$T/rd0"
want=$(python3 -c "import hashlib; print(hashlib.sha384(bytes(48)+hashlib.sha384(b'BOOTSTRAP').digest()).hexdigest())")
check_eq "pcr value" "$(json "$T/out" "j['PCR']")" "$want"
expect "pcr cert" 0 "" -- "$NECTL" pcr --signing-certificate "$T/cert.pem"
want=$(openssl x509 -in "$T/cert.pem" -outform DER | python3 -c "import hashlib,sys; print(hashlib.sha384(bytes(48)+hashlib.sha384(sys.stdin.buffer.read()).digest()).hexdigest())")
pcr8=$(json "$T/out" "j['PCR8']")
check_eq "pcr8 value" "$pcr8" "$want"
expect "pcr both" 2 "Conflicting" -- "$NECTL" pcr --input "$T/rd0" --signing-certificate "$T/cert.pem"
expect "pcr neither" 1 "Missing mandatory argument" -- "$NECTL" pcr
expect "pcr bad cert" 57 "not a PEM" -- "$NECTL" pcr --signing-certificate "$T/rd0"
expect "pcr missing file" 19 "$T/nope" -- "$NECTL" pcr --input "$T/nope"

# sign-eif, then describe verifies; re-signing replaces the signature.
cp "$T/v.eif" "$T/s.eif"
expect "sign" 0 "Enclave Image successfully signed." -- "$NECTL" sign-eif --eif-path "$T/s.eif" \
	--signing-certificate "$T/cert.pem" --private-key "$T/key.pem"
check_eq "sign PCR8" "$(json "$T/out" "j['Measurements']['PCR8']")" "$pcr8"
check_eq "sign keeps PCR0" "$(json "$T/out" "j['Measurements']['PCR0']")" \
	"$(json "$T/build.json" "j['Measurements']['PCR0']")"
expect "describe signed" 0 "" -- "$NECTL" describe-eif --eif-path "$T/s.eif"
cp "$T/out" "$T/ds.json"
check_eq "signed checks" "$(json "$T/ds.json" "(j['IsSigned'], j['CheckCRC'], j['SignatureCheck'], j['Measurements']['PCR8'])")" \
	"(True, True, True, '$pcr8')"
check_eq "signed key order" "$(json "$T/ds.json" "','.join(list(j.keys())[:6])")" \
	"EifVersion,Measurements,IsSigned,SigningCertificate,CheckCRC,SignatureCheck"
check_eq "signing certificate" "$(json "$T/ds.json" "(j['SigningCertificate']['IssuerName']['commonName'], j['SigningCertificate']['Algorithm'])")" \
	"('nectl-test', 'ecdsa-with-SHA384')"
nsec=$(json "$T/ds.json" "len(j['Sections'])")
expect "re-sign" 0 "successfully signed" -- "$NECTL" sign-eif --eif-path "$T/s.eif" \
	--signing-certificate "$T/cert2.pem" --private-key "$T/key2.pem"
expect "describe re-signed" 0 "" -- "$NECTL" describe-eif --eif-path "$T/s.eif"
check_eq "re-sign replaces" "$(json "$T/out" "(len(j['Sections']), [s['Type'] for s in j['Sections']].count('signature'), j['SignatureCheck'], j['SigningCertificate']['IssuerName']['commonName'])")" \
	"($nsec, 1, True, 'second')"

# eif_flip IN OUT TYPE WHICH BIT: flips BIT of the first or last data byte of
# the first section of TYPE, then fixes the CRC so only the change shows.
eif_flip() {
	python3 - "$@" <<'PY'
import struct, sys, zlib
src, dst, stype, which, bit = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5], 0)
b = bytearray(open(src, 'rb').read())
n = struct.unpack('>H', b[26:28])[0]
offs = struct.unpack('>32Q', b[28:284])
for i in range(n):
    t, _, size = struct.unpack('>HHQ', b[offs[i]:offs[i]+12])
    if t == stype:
        b[offs[i] + 12 + (0 if which == 'first' else size - 1)] ^= bit
        break
crc = zlib.crc32(b[:544])
for i in range(n):
    size = struct.unpack('>Q', b[offs[i]+4:offs[i]+12])[0]
    crc = zlib.crc32(b[offs[i]:offs[i]+12+size], crc)
b[544:548] = struct.pack('>I', crc)
open(dst, 'wb').write(b)
PY
}
# A signed image whose PCR0 changed (first ramdisk byte: B -> b): the
# signature no longer matches.
eif_flip "$T/s.eif" "$T/tampered.eif" 3 first 0x20
# nitro-cli fails describe-eif (E35) on a signature that does not verify;
# scripts gate on the status. The JSON, with the reason, is still printed.
expect "describe-eif: tampered signed image exits E35" 35 "signature does not verify" -- \
	"$NECTL" describe-eif --eif-path "$T/tampered.eif"
[ "$(wc -l <"$T/err")" -eq 1 ] && ok "describe-eif: bad signature error is one line" ||
	bad "describe-eif: bad signature error is one line"
check_eq "tampered SignatureCheck" "$(json "$T/out" "(j['CheckCRC'], j['SignatureCheck'])")" "(True, False)"
grep -q "PCR0" <(json "$T/out" "j.get('SignatureError')") && ok "tampered reason" || bad "tampered reason"
# The same signed image with the last byte of its COSE signature flipped.
eif_flip "$T/s.eif" "$T/badsig.eif" 4 last 0x01
expect "describe-eif: corrupted COSE signature exits E35" 35 "signature does not verify" -- \
	"$NECTL" describe-eif --eif-path "$T/badsig.eif"
check_eq "corrupted signature: JSON still printed" "$(json "$T/out" "(j['IsSigned'], j['SignatureCheck'], 'SignatureError' in j)")" \
	"(True, False, True)"

# Errors: one line, the E-code as exit status, nothing half-written.
expect "missing eif-path" 1 "\`eif-path\`" -- "$NECTL" describe-eif
expect "unknown option" 3 "--bogus" -- "$NECTL" describe-eif --bogus
expect "unknown command" 3 "frobnicate" -- "$NECTL" frobnicate
expect "no such eif" 19 "$T/none.eif" -- "$NECTL" describe-eif --eif-path "$T/none.eif"
expect "not an eif" 35 "bad magic" -- "$NECTL" describe-eif --eif-path "$T/cert.pem"
head -c 700 "$T/v.eif" >"$T/trunc.eif"
expect "truncated eif" 35 "runs past the end of the file (700 bytes)" -- "$NECTL" describe-eif --eif-path "$T/trunc.eif"
[ "$(wc -l <"$T/err")" -eq 1 ] && ok "error is one line" || bad "error is one line"
expect "bad arch" 3 "--arch" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x \
	--ramdisk "$T/rd0" --output "$T/x.eif" --arch sparc
expect "bad build time" 3 "RFC 3339" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x \
	--ramdisk "$T/rd0" --output "$T/x.eif" --build-time yesterday
expect "missing ramdisk" 1 "\`ramdisk\`" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x --output "$T/x.eif"
expect "missing ramdisk file" 19 "$T/nope" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x \
	--ramdisk "$T/nope" --output "$T/x.eif"
[ ! -e "$T/x.eif" ] && ! ls "$T" | grep -q tmp && ok "no partial output" || bad "no partial output"
expect "output dir missing" 19 "$T/no/dir/x.eif" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x \
	--ramdisk "$T/rd0" --output "$T/no/dir/x.eif"
printf '{"a": ' >"$T/badmeta.json"
expect "bad metadata json" 17 "badmeta.json" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x \
	--ramdisk "$T/rd0" --output "$T/x.eif" --metadata "$T/badmeta.json"
printf '{"Team": "infra", "Tier": 2}' >"$T/meta.json"
expect "custom metadata" 0 "" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x \
	--ramdisk "$T/rd0" --output "$T/m.eif" --metadata "$T/meta.json" --build-time 0
"$NECTL" describe-eif --eif-path "$T/m.eif" >"$T/dm.json" 2>/dev/null
check_eq "custom metadata flattened" "$(json "$T/dm.json" "(j['Metadata']['Team'], j['Metadata']['Tier'], j['Metadata']['BuildTime'], j['ImageName'], j['ImageVersion'])")" \
	"('infra', 2, '1970-01-01T00:00:00+00:00', 'kernel', '1.0')"
SOURCE_DATE_EPOCH=1700000000 "$NECTL" build-eif --kernel "$T/kernel" --cmdline x --ramdisk "$T/rd0" \
	--output "$T/r1.eif" >/dev/null 2>&1
sleep 1
SOURCE_DATE_EPOCH=1700000000 "$NECTL" build-eif --kernel "$T/kernel" --cmdline x --ramdisk "$T/rd0" \
	--output "$T/r2.eif" >/dev/null 2>&1
cmp -s "$T/r1.eif" "$T/r2.eif" && ok "SOURCE_DATE_EPOCH builds are identical" || bad "SOURCE_DATE_EPOCH builds are identical"

# sign-eif failures leave the image as it was.
cp "$T/v.eif" "$T/keep.eif"
expect "sign mismatched key" 60 "does not match" -- "$NECTL" sign-eif --eif-path "$T/keep.eif" \
	--signing-certificate "$T/cert.pem" --private-key "$T/key3.pem"
expect "sign curve mismatch" 60 "P-256" -- "$NECTL" sign-eif --eif-path "$T/keep.eif" \
	--signing-certificate "$T/cert.pem" --private-key "$T/key2.pem"
expect "sign without key" 60 "private-key" -- "$NECTL" sign-eif --eif-path "$T/keep.eif" \
	--signing-certificate "$T/cert.pem"
expect "sign corrupt eif" 35 "" -- "$NECTL" sign-eif --eif-path "$T/trunc.eif" \
	--signing-certificate "$T/cert.pem" --private-key "$T/key.pem"
cmp -s "$T/v.eif" "$T/keep.eif" && ok "failed sign leaves image intact" || bad "failed sign leaves image intact"
expect "build signed" 0 "" -- "$NECTL" build-eif --kernel "$T/kernel" --cmdline x --ramdisk "$T/rd0" \
	--output "$T/bs.eif" --signing-certificate "$T/cert.pem" --private-key "$T/key.pem"
check_eq "build signed PCR8" "$(json "$T/out" "j['Measurements']['PCR8']")" "$pcr8"
"$NECTL" describe-eif --eif-path "$T/bs.eif" >"$T/dbs.json" 2>/dev/null
check_eq "build signed verifies" "$(json "$T/dbs.json" "j['SignatureCheck']")" True

# run-enclave's machine option, checked before any enclave exists.
expect "run-enclave --help" 0 "" -- "$NECTL" run-enclave --help
grep -q -- "--machine-acpi" "$T/out" && grep -q "MP table" "$T/out" &&
	ok "run-enclave --help explains the machine and --machine-acpi" ||
	bad "run-enclave --help explains the machine and --machine-acpi"
printf '{"eif_path": "%s", "memory_mib": 64, "cpu_count": 1, "machine_acpi": "yes"}' \
	"$T/keep.eif" >"$T/acpi.json"
expect "--config machine_acpi must be a boolean" 17 "\`machine_acpi\` must be true or false" -- \
	"$NECTL" run-enclave --emulate --config "$T/acpi.json"

# Without --emulate: the NE device. Absent, E19 with nitro-cli's words; a
# bad NECTL_NE_DEVICE names itself; the model takes no --machine-acpi.
if [ ! -e /dev/nitro_enclaves ]; then
	expect "run-enclave without the NE device: E19" 19 \
		"File: '/dev/nitro_enclaves', failing operation: 'Open'" -- \
		env -u NECTL_NE_DEVICE "$NECTL" run-enclave --eif-path "$T/keep.eif" --memory 64 --cpu-count 2
fi
expect "NECTL_NE_DEVICE=simulate: a device path that does not open (E19)" 19 "File: 'simulate'" -- \
	env NECTL_NE_DEVICE=simulate "$NECTL" run-enclave --eif-path "$T/keep.eif" --memory 64 --cpu-count 2
printf '{"Cores": 999}' >"$T/topo.json"
expect "a topology out of range: refused, named" 17 "\"Cores\" must be a number from 1 to 256" -- \
	env NECTL_NE_DEVICE=sim:$T/topo.json "$NECTL" run-enclave --eif-path "$T/keep.eif" --memory 64 --cpu-count 2
expect "the model's pool: a CPU outside it is E21" 21 "The CPU 4 is not available in the NE CPU pool" -- \
	env NECTL_NE_DEVICE=sim "$NECTL" run-enclave --eif-path "$T/keep.eif" --memory 64 --cpu-ids 1,4
expect "the model's pool: more CPUs than it has is E22" 22 "8 requested, the NE CPU pool has 6" -- \
	env NECTL_NE_DEVICE=sim "$NECTL" run-enclave --eif-path "$T/keep.eif" --memory 64 --cpu-count 8
expect "--machine-acpi without --emulate" 2 "for --emulate only" -- \
	env NECTL_NE_DEVICE=sim "$NECTL" run-enclave --eif-path "$T/keep.eif" --memory 64 --cpu-count 2 --machine-acpi

# --- The supervisor's control plane and the launch checks (issue 9) ---------
# Supervisors are faked (a process holding the control socket) or real: a
# tiny guest whose kernel halts for ever keeps a real supervisor in its boot
# phase (no heartbeat ever comes), control loop and all, on a KVM that cannot
# run Linux. A second user is `nobody`, through setpriv.
chmod 711 "$T" # a second user reaches the run directory, nothing else
RD="$T/run"
mkdir -m 755 "$RD"
ctl_pids=()
ctl_cleanup() {
	for p in "${ctl_pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	for f in "$RD"/*.json; do
		[ -e "$f" ] && kill -9 "$(json "$f" "j['ProcessID']")" 2>/dev/null
	done
	return 0
}
trap 'ctl_cleanup; rm -rf "$T"' EXIT
nx() { NECTL_RUN_DIR=$RD "$NECTL" "$@"; }
as_nobody() { NECTL_RUN_DIR=$RD setpriv --reuid=65534 --regid=65534 --clear-groups "$NECTL" "$@"; }
# gone PID: no such process, or a zombie (its resources are freed).
gone() { ! [ -e "/proc/$1" ] || sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^[ZX]'; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# wait_for SECONDS COMMAND...: polls the condition every 50 ms.
wait_for() {
	local n=$(($1 * 20))
	shift
	while ! "$@"; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.05
	done
}
# fake_record SID PID NAME: a running debug-mode enclave's record.
fake_record() {
	printf '{"EnclaveName": "%s", "EnclaveID": "i-0000000000000000-enc%s", "ProcessID": %s, "EnclaveCID": %s, "NumberOfCPUs": 1, "CPUIDs": [0], "MemoryMiB": 64, "State": "RUNNING", "Flags": "DEBUG_MODE"}\n' \
		"$3" "$1" "$2" "$((100 + ${#ctl_pids[@]}))" >"$RD/$1.json"
}
# A stand-in for a stuck supervisor: it holds SID's control socket and either
# drops every connection at once (all client slots taken) or accepts and never
# answers; with "hang-noterm" it also ignores SIGTERM.
cat >"$T/fakesup.py" <<'PY'
import os, signal, socket, sys
path, mode = sys.argv[1], sys.argv[2]
if mode == 'hang-noterm':
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(64)
open(sys.argv[3], 'w').close()
held = []
while True:
    c, _ = s.accept()
    if mode == 'drop':
        c.close()
    else:
        held.append(c)
PY
# fake_sup SID MODE NAME: starts the stand-in and its record; FPID is its PID.
fake_sup() {
	rm -f "$T/ready"
	python3 "$T/fakesup.py" "$RD/$1.sock" "$2" "$T/ready" &
	FPID=$!
	ctl_pids+=("$FPID")
	wait_for 10 test -e "$T/ready"
	fake_record "$1" "$FPID" "$3"
}
left() { ls "$RD" | grep -c "^$1\." ; }

# 1. terminate-enclave never says "Terminated" while the supervisor runs.
fake_sup a1 drop fake-drop
expect "terminate: a supervisor whose client slots are full is stopped, not called gone" 0 "" -- \
	nx terminate-enclave --enclave-name fake-drop
check_eq "terminate (slots full): says Terminated" "$(json "$T/out" "j['Terminated']" 2>/dev/null)" True
wait_for 1 gone "$FPID" && ok "terminate (slots full): the supervisor is gone when it says so" ||
	bad "terminate (slots full): the supervisor is gone when it says so (PID $FPID still runs)"
check_eq "terminate (slots full): files removed once it is gone" "$(left a1)" 0
fake_sup a2 hang-noterm fake-hang
t0=$SECONDS
expect "terminate: a supervisor that accepts and never answers, deaf to SIGTERM, is killed" 0 "" -- \
	nx terminate-enclave --enclave-name fake-hang
gone "$FPID" && ok "terminate (never answers): SIGKILL after SIGTERM, gone in $((SECONDS - t0)) s" ||
	bad "terminate (never answers): the supervisor is gone (PID $FPID still runs)"
check_eq "terminate (never answers): files removed" "$(left a2)" 0
fake_sup a3 hang fake-foreign
expect "terminate: another user's enclave is refused (E38), not reported gone" 38 "Permission denied" -- \
	as_nobody terminate-enclave --enclave-name fake-foreign
[ "$(wc -l <"$T/err")" -eq 1 ] && ok "terminate refused: one line" || bad "terminate refused: one line: $(cat "$T/err")"
check_eq "terminate refused: the files stay" "$(left a3)" 2
gone "$FPID" && bad "terminate refused: the supervisor still runs" || ok "terminate refused: the supervisor still runs"
kill "$FPID"
sleep 300 &
spid=$!
ctl_pids+=("$spid")
fake_record a4 "$spid" fake-recycled
expect "a record whose PID was recycled (that process holds no socket of ours) is stale" 0 "" -- \
	nx describe-enclaves
check_eq "recycled PID: not listed" "$(json "$T/out" "[e['EnclaveName'] for e in j]")" "[]"
check_eq "recycled PID: stale files removed" "$(left a4)" 0
gone "$spid" && bad "recycled PID: never signalled" || ok "recycled PID: never signalled"
kill "$spid"
# A failed console request says why, once (no message formatted into itself).
fake_sup a5 drop fake-console
expect "console: a supervisor that drops the request" 44 "Enclave console connection failure" -- \
	nx console --enclave-name fake-console --disconnect-timeout 1
check_eq "console failure: the message is not formatted into itself" \
	"$(grep -o "Enclave console connection failure" "$T/err" | wc -l)" 1
kill "$FPID"
rm -f "$RD"/a5.*

# 2. Launch checks before any supervisor exists.
expect "--memory 16777217T does not wrap to 1 TiB (E03)" 3 "memory" -- \
	nx run-enclave --emulate --eif-path "$T/v.eif" --memory 16777217T --cpu-count 1
expect "--memory in MiB whose bytes overflow 64 bits (E03)" 3 "memory" -- \
	nx run-enclave --emulate --eif-path "$T/v.eif" --memory 17592186044416 --cpu-count 1
printf '{"eif_path": "%s", "memory_mib": 17592186044417, "cpu_count": 1}' "$T/v.eif" >"$T/bigmem.json"
expect "--config memory_mib whose bytes overflow 64 bits (E03)" 3 "memory" -- \
	nx run-enclave --emulate --config "$T/bigmem.json"
expect "--forward-max-conns 0 is refused (E03)" 3 "forward-max-conns" -- \
	nx run-enclave --emulate --eif-path "$T/v.eif" --memory 64 --cpu-count 1 --forward-max-conns 0
expect "--forward-max-conns-total over 1024 is refused (E03)" 3 "1..1024" -- \
	nx run-enclave --emulate --eif-path "$T/v.eif" --memory 64 --cpu-count 1 \
	--forward-max-conns-total 1025
printf '{"eif_path": "%s", "memory_mib": 64, "cpu_count": 1, "forward_max_conns": "many"}' "$T/v.eif" \
	>"$T/capcfg.json"
expect "--config forward_max_conns must be a number (E17)" 17 "forward_max_conns" -- \
	nx run-enclave --emulate --config "$T/capcfg.json"
grep -q -- "--forward-max-conns N (default 512)" <("$NECTL" run-enclave --help) &&
	ok "run-enclave --help gives the forwarding caps and their defaults" ||
	bad "run-enclave --help gives the forwarding caps and their defaults"

# 3. Real supervisors, with a tiny guest that halts before any heartbeat.
python3 - "$T/tiny.bz" <<'PY'
import struct, sys
setup = 4
k = bytearray(64 << 10)
k[0x1f1] = setup
struct.pack_into('<H', k, 0x1fe, 0xaa55)
k[0x201] = 0x66
k[0x202:0x206] = b'HdrS'
struct.pack_into('<H', k, 0x206, 0x020f)
k[0x211] = 1
struct.pack_into('<I', k, 0x22c, 0x7fffffff)
struct.pack_into('<I', k, 0x230, 0x200000)
k[0x234] = 1
struct.pack_into('<H', k, 0x236, 3)
struct.pack_into('<I', k, 0x238, 2047)
struct.pack_into('<I', k, 0x258, 0x1000000)
struct.pack_into('<I', k, 0x260, 0x1000000)
# 64-bit entry: "OK\n" to COM1, then hlt for ever.
code = bytes([0x66, 0xba, 0xf8, 0x03, 0xb0, 0x4f, 0xee, 0xb0, 0x4b, 0xee, 0xb0, 0x0a, 0xee,
              0xf4, 0xeb, 0xfd])
entry = (setup + 1) * 512 + 0x200
k[entry:entry + len(code)] = code
open(sys.argv[1], 'wb').write(k)
PY
"$NECTL" build-eif --kernel "$T/tiny.bz" --cmdline x --ramdisk "$T/rd0" --output "$T/tiny.eif" \
	>/dev/null 2>&1
# A CRC error anywhere in the image: refused by the launch (E35) before any
# supervisor or memory exists, as describe-eif reports it.
python3 - "$T/tiny.eif" "$T/badcrc.eif" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-1] ^= 1
open(sys.argv[2], 'wb').write(b)
PY
expect "run-enclave: an EIF whose CRC does not match is refused (E35)" 35 "CRC" -- \
	nx run-enclave --emulate --eif-path "$T/badcrc.eif" --memory 64 --cpu-count 1 --heartbeat-timeout 2
check_eq "bad CRC: no supervisor was started" "$(ls "$RD" | grep -c '\.json$')" 0
if ! [ -w /dev/kvm ] || ! python3 -c 'import fcntl,os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null; then
	echo "# no usable /dev/kvm: the real-supervisor cases are skipped"
else
	# tiny_start NAME [run-enclave options]: launches in the background, from
	# a shell with fd 7 open on a file and a soft fd limit of 512; sets LPID
	# (the launcher), SPID (the supervisor), SID and LOG.
	record_of() { grep -ls "\"EnclaveName\": \"$1\"" "$RD"/*.json | head -1 | grep .; }
	has_record() { record_of "$1" >/dev/null; }
	tiny_start() {
		local name=$1
		shift
		sh -c 'ulimit -Sn 512 && exec "$@"' sh env NECTL_RUN_DIR="$RD" "$NECTL" run-enclave \
			--emulate --eif-path "$T/tiny.eif" --memory 64 --cpu-count 1 --debug-mode \
			--enclave-name "$name" --heartbeat-timeout 300 "$@" >"$T/$name.run" 2>&1 7>"$T/fd7" &
		LPID=$!
		ctl_pids+=("$LPID")
		SPID= SID=
		if wait_for 20 has_record "$name"; then
			local rec
			rec=$(record_of "$name")
			SPID=$(json "$rec" "j['ProcessID']")
			SID=$(basename "$rec" .json)
			LOG="$RD/$SID.log"
			wait_for 10 grep -q OK "$LOG"
		fi
	}
	tiny_start tiny
fi
if [ -z "${SPID:-}" ]; then
	[ -w /dev/kvm ] && bad "a tiny guest keeps a real supervisor booting: $(cat "$T/tiny.run")"
else
	ok "a tiny guest keeps a real supervisor booting"

	# 5. A clean daemon.
	links=$(for f in /proc/"$SPID"/fd/*; do readlink "$f"; done)
	echo "$links" | grep -q "$T/fd7" && bad "supervisor: does not inherit the launcher's fd 7 ($(echo $links))" ||
		ok "supervisor: does not inherit the launcher's fd 7"
	ppid=$(sed 's/.*) //' "/proc/$SPID/stat" | awk '{print $2}')
	[ "$ppid" != "$LPID" ] && ok "supervisor: not the launcher's child (double fork: reaped whatever the caller does)" ||
		bad "supervisor: not the launcher's child (its parent is the launcher, $LPID)"
	sigign=$(awk '/^SigIgn/ {print $2}' "/proc/$SPID/status")
	[ $((0x$sigign & 0x1000)) -ne 0 ] && ok "supervisor: SIGPIPE ignored" || bad "supervisor: SIGPIPE ignored ($sigign)"
	check_eq "supervisor: RLIMIT_NOFILE soft raised to the hard limit" \
		"$(awk '/^Max open files/ {print ($4 == $5)}' "/proc/$SPID/limits")" 1
	check_eq "control socket: owner only (no world-writable socket)" "$(stat -c %a "$RD/$SID.sock")" 600

	# 3. Credentials: a second user may neither stream the console nor terminate.
	expect "console: another user is refused (E44)" 44 "Permission denied" -- \
		as_nobody console --enclave-name tiny --disconnect-timeout 1
	grep -q "^OK" "$T/out" && bad "console refused: nothing of the console leaked" ||
		ok "console refused: nothing of the console leaked"
	expect "terminate: another user is refused (E38)" 38 "Permission denied" -- \
		as_nobody terminate-enclave --enclave-name tiny
	gone "$SPID" && bad "terminate refused: the enclave runs on" || ok "terminate refused: the enclave runs on"
	expect "console: the owner streams it" 0 "" -- nx console --enclave-name tiny --disconnect-timeout 1
	grep -q "^OK" "$T/out" && ok "console: the owner sees the guest's output" ||
		bad "console: the owner sees the guest's output: $(head -c 300 "$T/out")"

	# 2. Idle connections cannot lock the owner out, and are dropped.
	cat >"$T/idle.py" <<'PY'
import socket, sys, time
conns = []
for _ in range(int(sys.argv[4])):
    c = socket.socket(socket.AF_UNIX)
    c.connect(sys.argv[1])
    conns.append(c)
open(sys.argv[2], 'w').close()
time.sleep(float(sys.argv[3]))
closed = 0
for c in conns:
    c.setblocking(False)
    try:
        closed += c.recv(1) == b''
    except OSError:
        pass
print(closed)
PY
	rm -f "$T/ready"
	python3 "$T/idle.py" "$RD/$SID.sock" "$T/ready" 8 40 >"$T/idle.out" &
	ipid=$!
	wait_for 10 test -e "$T/ready"
	sleep 0.3
	expect "console: the owner gets through 40 idle connections" 0 "" -- \
		nx console --enclave-name tiny --disconnect-timeout 1
	wait "$ipid"
	check_eq "idle connections are closed by the supervisor within the idle timeout" "$(cat "$T/idle.out")" 40

	# 4. Out of file descriptors: the control socket rests instead of spinning.
	nfd=$(ls "/proc/$SPID/fd" | wc -l)
	soft=$(awk '/^Max open files/ {print $4}' "/proc/$SPID/limits")
	prlimit --pid "$SPID" --nofile="$nfd:"
	rm -f "$T/ready"
	python3 "$T/idle.py" "$RD/$SID.sock" "$T/ready" 2.5 10 >/dev/null &
	ipid=$!
	wait_for 10 test -e "$T/ready"
	sleep 0.2
	c0=$(cpu_ticks "$SPID")
	sleep 1
	c1=$(cpu_ticks "$SPID")
	[ $((c1 - c0)) -lt 25 ] && ok "control socket at EMFILE: no spin ($((c1 - c0)) ticks in 1 s)" ||
		bad "control socket at EMFILE: no spin ($((c1 - c0)) ticks in 1 s)"
	wait "$ipid"
	prlimit --pid "$SPID" --nofile="$soft:"
	expect "control socket at EMFILE: recovers once descriptors are free" 0 "" -- \
		nx console --enclave-name tiny --disconnect-timeout 1
	check_eq "control socket at EMFILE: said once in the log" \
		"$(grep -c "out of file descriptors" "$LOG")" 1

	# 1. The owner's terminate: gone when it says so.
	expect "terminate: the owner" 0 "" -- nx terminate-enclave --enclave-name tiny
	check_eq "terminate: Terminated" "$(json "$T/out" "j['Terminated']" 2>/dev/null)" True
	gone "$SPID" && ok "terminate: the supervisor is gone when it returns" ||
		bad "terminate: the supervisor is gone when it returns"
	check_eq "terminate: files removed" "$(left "$SID")" 0
	wait "$LPID"

	# 1. A supervisor that cannot answer at all (stopped): signalled, killed,
	# and only then called terminated.
	tiny_start stuck
	kill -STOP "$SPID"
	expect "terminate: a stopped supervisor is killed, then reported terminated" 0 "" -- \
		nx terminate-enclave --enclave-name stuck
	gone "$SPID" && ok "terminate (stopped supervisor): gone, its VM with it" ||
		bad "terminate (stopped supervisor): gone, its VM with it"
	check_eq "terminate (stopped supervisor): files removed" "$(left "$SID")" 0
	wait "$LPID"

	# 6. A signature section that cannot be decoded: the message names the
	# image once (it used to be formatted into itself).
	cp "$T/tiny.eif" "$T/tinys.eif"
	"$NECTL" sign-eif --eif-path "$T/tinys.eif" --signing-certificate "$T/cert.pem" \
		--private-key "$T/key.pem" >/dev/null 2>&1
	python3 - "$T/tinys.eif" "$T/badsig.eif" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
j = b.find(b'signature\x98') + 11  # the COSE_Sign1 array header, as a CBOR uint
assert b[j:j + 2] == b'\x18\x84'
b[j + 1] = 0x85
n = struct.unpack('>H', b[26:28])[0]
offs = struct.unpack('>32Q', b[28:284])
crc = zlib.crc32(b[:544])
for i in range(n):
    size = struct.unpack('>Q', b[offs[i] + 4:offs[i] + 12])[0]
    crc = zlib.crc32(b[offs[i]:offs[i] + 12 + size], crc)
b[544:548] = struct.pack('>I', crc)
open(sys.argv[2], 'wb').write(b)
PY
	expect "run-enclave: an undecodable signature (E59)" 59 "$T/badsig.eif: signature section: COSE_Sign1" -- \
		nx run-enclave --emulate --eif-path "$T/badsig.eif" --memory 64 --cpu-count 1 --heartbeat-timeout 5
fi
ctl_cleanup

# ---- hostile inputs to the image commands (issue 9) ----
# kernel fetch: the ABI is checked before it becomes a path or an apt argument
# (a private cache: nothing is downloaded, the shared cache is not touched).
for abi in ../../x 'a b' '-o' '6.12/../../etc'; do
	expect "kernel fetch --version '$abi' refused" 3 "\`$abi\`" -- env NECTL_CACHE_DIR="$T/kc" \
		"$NECTL" kernel fetch --version "$abi"
	[ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] && ok "kernel fetch --version '$abi': one line, no JSON" ||
		bad "kernel fetch --version '$abi': one line, no JSON"
done
[ ! -e "$T/kc/kernels/apt" ] && ok "kernel fetch: bad ABIs never reached apt" || bad "kernel fetch: bad ABIs never reached apt"
expect "build-enclave --kernel-version ../../x refused" 3 "\`../../x\`" -- env NECTL_CACHE_DIR="$T/kc" \
	"$NECTL" build-enclave --kernel-version ../../x --rootfs "$T" --cmd /x --output-file "$T/kv.eif"
[ ! -e "$T/kv.eif" ] && ok "build-enclave --kernel-version ../../x: no output" || bad "build-enclave --kernel-version ../../x: no output"
# ---- end of the image commands' hostile inputs ----

# ---- the local attestation CA and verify-attestation (issue 11) ----
export_st="$T/state"
expect "ca init" 0 "" -- env NECTL_STATE_DIR="$export_st" "$NECTL" ca init
check_eq "ca init created" "$(json "$T/out" "j['Created']")" True
check_eq "ca key mode" "$(stat -c %a "$export_st/ca/root.key") $(stat -c %a "$export_st/ca/intermediate.key") $(stat -c %a "$export_st/ca")" "600 600 700"
expect "ca show" 0 "" -- env NECTL_STATE_DIR="$export_st" "$NECTL" ca show
check_eq "ca show keys" "$(json "$T/out" "','.join(j.keys()) + ' ' + ','.join(j['Root'].keys())")" \
	"Directory,Root,Intermediate Subject,Issuer,NotBefore,NotAfter,SHA256"
! grep -q PRIVATE "$T/out" && ok "ca show: no key material" || bad "ca show: no key material"
root_fp=$(json "$T/out" "j['Root']['SHA256']")
expect "ca export" 0 "" -- env NECTL_STATE_DIR="$export_st" "$NECTL" ca export
check_eq "ca export is the shown root" \
	"$(openssl x509 -in "$T/out" -outform DER 2>/dev/null | sha256sum | cut -c1-64)" "$root_fp"
openssl x509 -in "$T/out" -noout -subject 2>/dev/null | grep -q 'nectl.local-attestation-root' &&
	ok "ca export: openssl parses the root" || bad "ca export: openssl parses the root"
! grep -q PRIVATE "$T/out" && ok "ca export: no key material" || bad "ca export: no key material"
chmod 0644 "$export_st/ca/intermediate.key"
expect "ca show: a readable key is refused" 19 "readable by others" -- \
	env NECTL_STATE_DIR="$export_st" "$NECTL" ca show
chmod 0600 "$export_st/ca/intermediate.key"
for c in "ca init" "ca show" "ca export" verify-attestation; do
	expect "$c --help" 0 "" -- "$NECTL" $c --help
	grep -q "Example" "$T/out" && ok "$c help has an example" || bad "$c help has an example"
done
printf 'garbage' >"$T/att.bin"
va() { env NECTL_STATE_DIR="$export_st" "$NECTL" verify-attestation "$@"; }
expect "verify-attestation without --document" 1 "document" -- va
expect "verify-attestation: a missing file" 19 "$T/none.bin" -- va --document "$T/none.bin"
expect "verify-attestation: --root and --aws-root" 2 "--aws-root" -- \
	va --document "$T/att.bin" --root "$T/cert.pem" --aws-root
expect "verify-attestation: odd hex nonce" 3 "--nonce" -- va --document "$T/att.bin" --nonce abc
expect "verify-attestation: non-hex user data" 3 "--user-data" -- va --document "$T/att.bin" --user-data zz
expect "verify-attestation: bad max age" 3 "--max-age" -- va --document "$T/att.bin" --max-age 1x
expect "verify-attestation: a root that is no PEM" 3 "not a PEM" -- \
	va --document "$T/att.bin" --root "$T/kernel"
printf '{"PCR0": "00"}' >"$T/badpcrs.json"
expect "verify-attestation: a short PCR" 17 "PCR0" -- \
	va --document "$T/att.bin" --expect-pcrs "$T/badpcrs.json"
[ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] && ok "verify-attestation bad input: one line, no JSON" ||
	bad "verify-attestation bad input: one line, no JSON"
expect "verify-attestation: not a document (E59)" 59 "not valid" -- va --document "$T/att.bin" --aws-root
check_eq "verify-attestation verdict" "$(json "$T/out" "(j['Valid'], len(j['Reasons']) > 0)")" "(False, True)"
head -c 40000 /dev/zero >"$T/big.bin"
expect "verify-attestation: a too large file" 3 "larger than" -- va --document "$T/big.bin"
# ---- end of the attestation commands ----

# explain
expect "explain" 0 "[ E35 ]" -- "$NECTL" explain --error-code E35
expect "explain unknown" 3 "E99" -- "$NECTL" explain --error-code E99

summary

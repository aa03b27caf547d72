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

# explain
expect "explain" 0 "[ E35 ]" -- "$NECTL" explain --error-code E35
expect "explain unknown" 3 "E99" -- "$NECTL" explain --error-code E99

summary

#!/bin/sh
# The main job on built-in samples: the sample app (examples/hello) becomes a
# signed enclave image with nectl's own Nitro-ready kernel (built by `nectl kernel
# build`, once), then it is described.
set -eu
NECTL=${1:-build/nectl}
HELLO=${2:-build/examples/hello/hello}
W=build/demo
rm -rf "$W"
mkdir -p "$W/rootfs/bin"
cp "$HELLO" "$W/rootfs/bin/hello"

openssl ecparam -name secp384r1 -genkey -noout -out "$W/key.pem" 2>/dev/null
openssl req -new -x509 -sha384 -key "$W/key.pem" -subj "/CN=nectl demo/O=nectl" -days 30 \
	-out "$W/cert.pem" 2>/dev/null

echo "== nectl build-enclave (no Docker; PCRs known before deployment)"
"$NECTL" build-enclave --rootfs "$W/rootfs" --cmd /bin/hello --env GREETING=hello \
	--name hello --version 1.0 --build-time 1700000000 --output-file "$W/hello.eif" \
	--signing-certificate "$W/cert.pem" --private-key "$W/key.pem" --pcrs-out "$W/pcrs.json"
echo "== nectl describe-eif"
"$NECTL" describe-eif --eif-path "$W/hello.eif"
echo "== nectl pcr --signing-certificate"
"$NECTL" pcr --signing-certificate "$W/cert.pem"
echo "demo: signed enclave image at $W/hello.eif, PCRs in $W/pcrs.json"

# Then it runs, emulated. This machine's kind of /dev/kvm cannot boot Linux,
# so nectl runs inside the TCG shell VM, whose /dev/kvm can (docs/shellvm.md).
echo "== the image runs emulated, inside the shell VM (about a minute)"
set --
real=$(readlink -f "$NECTL")
for lib in $(ldd "$real" | grep -o '/[^ ]*'); do
	set -- "$@" --file "$(readlink -f "$lib"):$lib"
done
scripts/shellvm.sh --timeout 600 --mem 2G "$@" --file "$real:/nectl" \
	--file "$W/hello.eif:/hello.eif" --file scripts/demo-enclave.sh:/demo.sh -- sh /demo.sh

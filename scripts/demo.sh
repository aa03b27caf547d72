#!/bin/sh
# The main job on built-in samples: build, sign, describe and measure an EIF.
set -eu
NECTL=${1:-build/nectl}
S=examples/sample
W=build/demo
rm -rf "$W"
mkdir -p "$W"

# Reproducible newc archives: sorted names, fixed mtimes, root ownership.
pack() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\./||' |
		cpio -o -H newc --reproducible -R 0:0 --quiet) >"$2"
}
touch -d @1700000000 $(find "$S/bootstrap" "$S/app")
pack "$S/bootstrap" "$W/bootstrap.cpio"
pack "$S/app" "$W/app.cpio"

openssl ecparam -name secp384r1 -genkey -noout -out "$W/key.pem" 2>/dev/null
openssl req -new -x509 -sha384 -key "$W/key.pem" -subj "/CN=nectl demo/O=nectl" -days 30 \
	-out "$W/cert.pem" 2>/dev/null

echo "== nectl build-eif"
"$NECTL" build-eif --kernel "$S/kernel" --cmdline "console=ttyS0 reboot=k panic=1" \
	--ramdisk "$W/bootstrap.cpio" --ramdisk "$W/app.cpio" --output "$W/sample.eif" \
	--name sample --version 1.0 --build-time 1700000000
echo "== nectl sign-eif"
"$NECTL" sign-eif --eif-path "$W/sample.eif" --signing-certificate "$W/cert.pem" \
	--private-key "$W/key.pem"
echo "== nectl describe-eif"
"$NECTL" describe-eif --eif-path "$W/sample.eif"
echo "== nectl pcr --signing-certificate"
"$NECTL" pcr --signing-certificate "$W/cert.pem"
echo "demo: signed image at $W/sample.eif"

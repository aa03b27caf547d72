"""Writes container-image fixtures for the build-enclave tests: an OCI image
layout, an OCI archive and a `docker save` archive of the same layers.

mkimage.py OUTDIR: writes OUTDIR/layout/, OUTDIR/oci.tar, OUTDIR/docker.tar and
OUTDIR/expected.txt (the rootfs the layers must produce: "type path" lines)."""
import hashlib
import io
import json
import os
import sys
import tarfile

MTIME = 1600000000


def entry(tf, name, kind="file", data=b"", mode=0o644, target=None):
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.mode = mode
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, target
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, target
    info.size = len(data) if kind == "file" else 0
    tf.addfile(info, io.BytesIO(data) if kind == "file" else None)


def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            entry(tf, *e)
    return buf.getvalue()


# Layer 1: a base system. Layer 2: deletes, replaces and adds, with whiteouts.
LAYERS = [
    layer([("bin", "dir"), ("bin/app", "file", b"#!/bin/sh\necho app\n", 0o755),
           ("etc", "dir"), ("etc/old.conf", "file", b"old\n"), ("etc/keep.conf", "file", b"k\n"),
           ("var", "dir"), ("var/cache", "dir"), ("var/cache/a", "file", b"a"),
           ("var/cache/b", "file", b"b"), ("usr", "dir"), ("usr/lib", "dir"),
           ("lib", "symlink", b"", 0o777, "usr/lib"),
           ("usr/bin", "dir"), ("usr/bin/tool", "file", b"tool", 0o4755)]),
    layer([("etc/.wh.old.conf", "file"), ("var/cache/.wh..wh..opq", "file"),
           ("var/cache/c", "file", b"c"), ("etc/new.conf", "file", b"new\n"),
           ("usr/bin/tool-link", "hardlink", b"", 0o644, "usr/bin/tool")]),
]
EXPECTED = """d bin
f bin/app
d etc
f etc/keep.conf
f etc/new.conf
l lib
d usr
d usr/bin
f usr/bin/tool
f usr/bin/tool-link
d usr/lib
d var
d var/cache
f var/cache/c
"""
CONFIG = {
    "architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": ["/bin/app"], "Cmd": ["--flag", "two words"],
               "Env": ["PATH=/usr/bin:/bin", "HELLO=Hello from the enclave side!"],
               "WorkingDir": "/srv"},
    "rootfs": {"type": "layers", "diff_ids": []},
}


def sha(b):
    return hashlib.sha256(b).hexdigest()


def write_layout(root, config):
    blobs = os.path.join(root, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(b):
        with open(os.path.join(blobs, sha(b)), "wb") as f:
            f.write(b)
        return {"digest": "sha256:" + sha(b), "size": len(b)}

    config = dict(config, rootfs={"type": "layers", "diff_ids": ["sha256:" + sha(x) for x in LAYERS]})
    cfg = put(json.dumps(config).encode())
    layers = [dict(put(x), mediaType="application/vnd.oci.image.layer.v1.tar") for x in LAYERS]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": layers}
    m = put(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [dict(m, mediaType=manifest["mediaType"],
                                                     platform={"architecture": "amd64", "os": "linux"})]}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def tar_dir(src, dst):
    with tarfile.open(dst, "w") as tf:
        for name in sorted(os.listdir(src)):
            tf.add(os.path.join(src, name), arcname=name)


def write_docker(dst, config):
    config = dict(config, rootfs={"type": "layers", "diff_ids": ["sha256:" + sha(x) for x in LAYERS]})
    with tarfile.open(dst, "w") as tf:
        def add(name, b):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(b), MTIME
            tf.addfile(info, io.BytesIO(b))
        c = json.dumps(config).encode()
        add(sha(c) + ".json", c)
        names = []
        for i, x in enumerate(LAYERS):
            names.append(f"layer{i}/layer.tar")
            add(names[-1], x)
        add("manifest.json", json.dumps([{"Config": sha(c) + ".json", "RepoTags": ["fixture:1"],
                                           "Layers": names}]).encode())


def main():
    out = sys.argv[1]
    config = json.loads(sys.argv[2]) if len(sys.argv) > 2 else CONFIG
    write_layout(os.path.join(out, "layout"), config)
    tar_dir(os.path.join(out, "layout"), os.path.join(out, "oci.tar"))
    write_docker(os.path.join(out, "docker.tar"), config)
    with open(os.path.join(out, "expected.txt"), "w") as f:
        f.write(EXPECTED)


main()

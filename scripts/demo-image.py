#!/usr/bin/env python3
"""Writes a docker-archive (as `docker save` writes one) of a root filesystem directory:
one layer, tagged demo:latest (or TAG), running /bin/sh with PATH=/bin. Files named ./probe are
left out (the runtime demo leaves one behind).

    scripts/demo-image.py ROOTFS OUT.tar [TAG]
"""
import hashlib
import io
import json
import sys
import tarfile

rootfs, out = sys.argv[1], sys.argv[2]
tag = sys.argv[3] if len(sys.argv) > 3 else "demo:latest"
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    t.add(rootfs, arcname=".", filter=lambda i: None if i.name == "./probe" else i)
layer = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/usr/bin"], "WorkingDir": "/"},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
with tarfile.open(out, "w") as t:
    for name, data in ((config_name, config), ("layer.tar", layer), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))

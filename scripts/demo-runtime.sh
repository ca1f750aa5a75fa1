#!/usr/bin/env bash
# The runtime on its own (the README's main job is scripts/demo.sh, the engine): build bulwark-runtime, assemble a busybox
# root filesystem, and run a container in it with no network, showing what it can see;
# then the engine: the same files as an image, loaded into bulwark's store, listed,
# mounted as a container's root filesystem, run, and removed (all offline).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it installs packages and shows the root-run hardened default; for rootless use see the README)" >&2; exit 1; }
scripts/deps.sh
scripts/build.sh
runtime="$PWD/target/release/bulwark-runtime"
bundle=$(mktemp -d /tmp/bulwark-demo.XXXXXX)
state=$(mktemp -d /tmp/bulwark-demo-state.XXXXXX)
engine="$PWD/target/release/bulwark"
store=$(mktemp -d /tmp/bulwark-demo-store.XXXXXX)
cleanup() {
  "$runtime" --root "$state" delete --force demo >/dev/null 2>&1 || true
  "$runtime" --root "$state" delete --force demo-image >/dev/null 2>&1 || true
  BULWARK_STORE="$store/store" "$engine" image umount demo >/dev/null 2>&1 || true
  rm -rf "$bundle" "$state" "$store"
}
trap cleanup EXIT
mkdir -p "$bundle"/rootfs/{bin,proc,sys,dev,tmp,etc,root}
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$bundle/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$bundle/rootfs/etc/group"
(cd "$bundle" && "$runtime" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["terminal"] = False
config["linux"]["resources"] = {"pids": {"limit": 64}, "memory": {"limit": 128 * 1024 * 1024}}
config["process"]["args"] = ["sh", "-c", """
echo "hostname:     $(hostname)"
echo "user:         $(id) (host uid $(awk '{print $2}' /proc/self/uid_map): a user namespace)"
echo "processes:    $(ps -o pid= | wc -l) visible (own pid namespace; this shell is pid $$)"
echo "network:      $(ls /sys/class/net | tr '\\n' ' ')(loopback only: no network)"
echo "capabilities: $(grep CapEff /proc/self/status | cut -f2)"
echo "no_new_privs: $(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "root fs:      $(touch /probe && stat -c 'writable; /probe is owned by uid %u here and by the image owner on the host (idmapped)' /probe)"
echo "cgroup:       $(cut -d: -f3 /proc/self/cgroup | sort -u | tr '\\n' ' ')(own cgroup namespace)"
echo "pids limit:   $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
echo "masked:       /proc/keys reads as $(wc -c < /proc/keys) bytes (/dev/null is mounted over it)"
echo "seccomp:      $(grep -E '^Seccomp:' /proc/self/status | cut -f2) (2: filtering); mount: $(mount -t tmpfs x /mnt 2>&1 | head -c 60)"
"""]
json.dump(config, open(path, "w"), indent=2)
PY
echo "== bulwark-runtime run (bundle $bundle)"
"$runtime" --root "$state" run --bundle "$bundle" demo
echo "== container exited with status $?; containers left in the state directory: $(ls -A "$state" | grep -vc "^@") (@seccomp keeps compiled seccomp programs for the next container)"

echo
echo "== bulwark (the engine): the same files as an image, through the store"
cargo build -q --release -p bulwark-engine-cli
export BULWARK_STORE="$store/store"
# A docker-archive of the root filesystem, as `docker save` writes one.
scripts/demo-image.py "$bundle/rootfs" "$store/demo.tar"
"$engine" load -i "$store/demo.tar"
"$engine" images
root=$("$engine" image mount --name demo demo:latest)
echo "image mount: $root (an overlay of the image's layer and an upper layer of its own)"
python3 - "$bundle/config.json" "$root" <<'PY'
import json, sys
path, root = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["root"] = {"path": root, "readonly": False}
# An overlay cannot be idmapped as a whole: this run keeps the image's owners as they
# are, without a user namespace (Docker's default); containers from images come next.
config["annotations"] = {k: v for k, v in config.get("annotations", {}).items() if k != "bulwark.rootfs.idmap"}
config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "user"]
config["linux"].pop("uidMappings", None)
config["linux"].pop("gidMappings", None)
config["process"]["args"] = ["sh", "-c", "echo 'in the image: '$(ls /bin | wc -l)' programs in /bin'; echo changed > /etc/motd && echo 'wrote /etc/motd (to the upper layer only)'"]
json.dump(config, open(path, "w"), indent=2)
PY
"$runtime" --root "$state" run --bundle "$bundle" demo-image
"$engine" image umount demo
"$engine" rmi demo:latest
echo "== store after rmi: $(find "$store/store/images" "$store/store/layers" -mindepth 1 -not -name l | wc -l) image records and layers left"

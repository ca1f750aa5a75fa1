#!/usr/bin/env bash
# bulwark's main job on a built-in default, with no network: build the engine, make a
# small busybox image locally, load it into a store of the demo's own, run it with
# `bulwark run` (showing what the hardened default leaves a container), then run one in
# the background and show `ps`, `logs` and `exec` on it, stop it, show two containers
# finding each other by name on a network of their own and a published port (all on this
# machine's own bridges and loopback), and clean everything up.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it installs packages and shows the root-run default; for rootless use see the README)" >&2; exit 1; }
scripts/deps.sh nftables iproute2
cargo build -q --release -p bulwark-engine-cli -p bulwark-dns
scripts/build.sh    # bulwark-runtime and bulwark-mon, static
bulwark="$PWD/target/release/bulwark"
work=$(mktemp -d /tmp/bulwark-demo.XXXXXX)
export BULWARK_STORE="$work/store"
cleanup() {
  for id in $("$bulwark" ps -aq 2>/dev/null); do "$bulwark" rm -f "$id" >/dev/null 2>&1 || true; done
  "$bulwark" network prune -f >/dev/null 2>&1 || true
  # This store's default bridge and nftables table are named after its path (FNV-1a).
  hash=$(python3 -c 'import sys; h=0x811C9DC5
for b in sys.argv[1].encode(): h=((h^b)*0x01000193)&0xFFFFFFFF
print(f"{h:08x}")' "$BULWARK_STORE")
  ip link del "bw-d$hash" 2>/dev/null || true
  nft delete table ip "bulwark-$hash" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A one-layer image of Debian's busybox-static, as `docker save` writes one.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc,root}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$rootfs/etc/group"
scripts/demo-image.py "$rootfs" "$work/demo.tar"

echo "== bulwark load, images"
"$bulwark" load -i "$work/demo.tar"
"$bulwark" images

echo
echo "== bulwark run --rm demo (the hardened default, seen from inside)"
"$bulwark" run --rm --hostname demo -m 128m demo sh -c '
echo "hostname:     $(hostname)"
echo "processes:    $(ps -o pid= | wc -l) visible (own pid namespace; this shell is pid $$)"
echo "network:      $(ls /sys/class/net | tr "\n" " ")(own namespace; eth0 $(ip -4 -o addr show eth0 | awk "{print \$4}") on the default bridge)"
echo "capabilities: $(grep CapEff /proc/self/status | cut -f2) (11 of 41)"
echo "no_new_privs: $(grep NoNewPrivs /proc/self/status | cut -f2)"
echo "seccomp:      $(grep -E "^Seccomp:" /proc/self/status | cut -f2) (2: filtering); mount: $(mount -t tmpfs x /mnt 2>&1 | head -c 50)"
echo "masked:       /proc/keys reads as $(wc -c < /proc/keys) bytes"
echo "memory limit: $(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) bytes"
echo "pids limit:   $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
echo "root fs:      $(echo changed > /etc/motd && echo "writable (changes go to the container'"'"'s own upper layer)")"'
echo "== exit status $?"

echo
echo "== bulwark run -d, ps, logs, exec, stop, rm"
"$bulwark" run -d --name ticker demo sh -c 'trap "echo stopping; exit 0" TERM; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.3; done' >/dev/null
sleep 1
"$bulwark" ps
"$bulwark" logs --tail 2 ticker
"$bulwark" exec ticker sh -c 'echo "exec: in $(hostname), processes: $(ps -o comm= | tr "\n" " ")"'
"$bulwark" stop ticker >/dev/null
"$bulwark" ps -a --format '{{.Names}}: {{.Status}}'
"$bulwark" logs --tail 1 ticker
"$bulwark" rm ticker >/dev/null

echo
echo "== a network of their own: names, and a published port without a proxy"
"$bulwark" network create demo-net >/dev/null
"$bulwark" run -d --name web --network demo-net -p 127.0.0.1:18089:80 demo httpd -f -p 80 -h /etc >/dev/null
"$bulwark" run --rm --network demo-net demo sh -c 'printf "GET /hostname HTTP/1.0\r\n\r\n" | nc -w 10 web 80 | tail -1 | sed "s/^/by name, web answers: /"'
"$bulwark" port web
printf 'GET /hostname HTTP/1.0\r\n\r\n' | busybox nc -w 10 127.0.0.1 18089 | tail -1 | sed 's/^/from the host on 127.0.0.1:18089: /'
"$bulwark" rm -f web >/dev/null
"$bulwark" network rm demo-net >/dev/null
"$bulwark" rmi demo:latest >/dev/null
echo "== left in the store: $("$bulwark" ps -aq | wc -l) containers, $("$bulwark" images -q | wc -l) images"

#!/usr/bin/env bash
# The whole test suite: unit tests and the integration tests that run real containers
# (as root, on this kernel), then the cgroup and container suites again in a pure
# cgroup v2 guest (tests/v2-guest), since this host's cgroup layout is never changed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root: the integration tests create real containers" >&2; exit 1; }
# The engines the engine tests drive (tests/tests/engine_*.rs), next to runc; uidmap
# (newuidmap/newgidmap) and util-linux (setpriv) for the rootless tests; for the image
# tests (tests/tests/images_*.rs) docker-registry, openssl (the token service's key),
# skopeo and fuse-overlayfs.
scripts/deps.sh containerd docker.io podman conmon runc crun skopeo docker-registry \
  netavark aardvark-dns catatonit tini iptables iproute2 util-linux uidmap openssl \
  fuse-overlayfs nftables passt iperf3
# Rootless networking (pasta) opens /dev/net/tun as the user; Debian's udev makes it 0666,
# a host without udev (this kind of VM) leaves the kernel's 0600.
[ -c /dev/net/tun ] && chmod 0666 /dev/net/tun
scripts/build.sh debug
cargo build -q -p bulwark-engine-cli -p bulwark-monitor -p bulwark-dns
export BULWARK_RUNTIME="$PWD/target/debug/bulwark-runtime"
export BULWARK_ENGINE="$PWD/target/debug/bulwark"
export BULWARK_MONITOR="$PWD/target/debug/bulwark-mon"
export BULWARK_DNS="$PWD/target/debug/bulwark-dns"
cargo test --workspace --no-fail-fast "$@"

if [ "${BULWARK_SKIP_V2:-0}" = 1 ]; then
  echo "test: BULWARK_SKIP_V2=1: the cgroup v2 guest suite was skipped"
  exit 0
fi
# The test binaries built above, run unchanged inside the guest (one boot for all).
runner="$PWD/target/v2-suite.sh"
{
  echo '#!/bin/sh'
  echo "export BULWARK_RUNTIME='$BULWARK_RUNTIME'"
  echo "export BULWARK_ENGINE='$BULWARK_ENGINE'"
  echo "export BULWARK_MONITOR='$BULWARK_MONITOR'"
  # The guest's kernel has only the modules its boot needs (no bridge, veth or
  # nf_tables): the container tests there run without a network of their own.
  echo "export BULWARK_DEFAULT_NETWORK=none"
  echo "export BULWARK_TESTS_STRICT='${BULWARK_TESTS_STRICT:-0}'"
  echo 'status=0'
  cargo test --no-run --message-format=json -p bulwark-cgroups -p bulwark-tests 2>/dev/null \
    | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])' \
    | while read -r binary; do
        # The engine and image tests start daemons of their own and do not depend on
        # the cgroup layout; they run on the host only.
        case "$(basename "$binary")" in engine_*|images_*) continue ;; esac
        echo "echo \"== v2 guest: $(basename "$binary")\""
        echo "'$binary' --test-threads=2 || status=1"
      done
  echo 'exit $status'
} > "$runner"
chmod +x "$runner"
echo "== cgroup v2 guest (tests/v2-guest/run.sh)"
# Share the checkout: it may sit under /tmp, which the guest replaces with its own.
tests/v2-guest/run.sh --timeout 1800 --share "$PWD" -- "$runner"

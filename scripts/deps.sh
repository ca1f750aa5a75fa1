#!/usr/bin/env bash
# Debian packages the build and the tests need, installed only when missing (idempotent):
# busybox-static for the test and demo root filesystems, libseccomp-dev for the build
# (bulwark-seccomp links libseccomp).
set -euo pipefail
missing=()
for pkg in busybox-static libseccomp-dev libc6-dev python3 "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

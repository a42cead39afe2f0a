#!/usr/bin/env bash
# Issue 15's CI step (run by .ci/run after the tests; OVFAST_SKIP_PACKAGING=1 skips it): one wheel build,
# reused by both tests —
#   1. packaging/build-wheel.sh              the repaired manylinux wheel (compiles the extension once)
#   2. packaging/test-wheel-debootstrap.sh   installs and serves it in a bare Debian 12 root
#   3. packaging/test-image.sh --wheel       the podman image on that wheel, smoke-tested twice
# About 15 minutes on 2 cores from nothing (the debootstrap root and the podman base are cached in
# /var/tmp/ovfast-pack and podman's store for later runs); each step prints its time.
# Needs root, apt (podman, runc, debootstrap are installed when missing) and python3 with ".[test]".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PYTHON="${PYTHON:-python3}"
t0=$SECONDS
timed() {
  local name="$1" t=$SECONDS; shift
  "$@"
  echo "packaging: $name took $((SECONDS - t)) s" >&2
}

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  timed "apt-get install podman runc debootstrap" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
timed "build-wheel" "$here/build-wheel.sh" "$out" >"$out/path"
wheel="$(tail -1 "$out/path")"
timed "debian-root" "$here/debian-root.sh" >/dev/null
timed "test-wheel-debootstrap" "$here/test-wheel-debootstrap.sh" "$wheel"
timed "test-image" "$here/test-image.sh" --wheel "$wheel"
# the build stages' dangling images (the tagged image and the base stay for the next run)
podman image prune -f >/dev/null 2>&1 || true
echo "packaging: wheel and image tests passed in $((SECONDS - t0)) s" >&2

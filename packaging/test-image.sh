#!/usr/bin/env bash
# Issue 15, point 4: builds the container image with podman (daemonless) and smoke-tests it.
#   - installs podman, runc and debootstrap from Debian when missing;
#   - base: $PYTHON_IMAGE, else python:3.11-slim-bookworm when it can be pulled, else a stand-in made
#     with debootstrap (debian-root.sh) and imported as localhost/ovfast-base:bookworm-python3.11;
#   - podman build --isolation chroot --format docker (docker format keeps the HEALTHCHECK);
#   - runs it twice on this machine's loopback (--network host): as built (non-root, uid 1000), and with
#     --read-only --user 12345 and no writable tmpfs at all (as `docker run --read-only`). Each time:
#     health, KServe gRPC and REST inference, TFS predict, metrics (packaging/smoke.py), the image's
#     HEALTHCHECK, and a graceful `podman stop` (exit status 0, "Server stopped").
#
#   packaging/test-image.sh [--wheel WHEEL]   WHEEL: a repaired wheel to install (skips compiling in the
#                                             image; otherwise the Dockerfile builds one from source)
#
# Settings this kind of VM needs (cgroup v1, no systemd, hard limits of 20000 open files and ~96000
# processes that podman's defaults exceed, loopback only)
# live in a private containers.conf (runc, cgroupfs, file events, lowered default ulimits); nothing in
# /etc/containers is changed. Needs root and $PYTHON (default python3) with the test dependencies.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$(dirname "$here")"
python="${PYTHON:-python3}"
tag="${OVFAST_IMAGE:-localhost/ovfast:test}"
step() { printf '%s test-image: %s\n' "$(date -u +%T)" "$*" >&2; }
t0=$SECONDS

wheel=""
if [ "${1:-}" = "--wheel" ]; then wheel="$2"; fi

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  step "installing podman, runc, debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
conf="$(mktemp)"
cat >"$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$conf"
# pip inside the build trusts this machine's CA bundle (it may hold a TLS-inspecting proxy's CA): both are
# mounted for the RUN steps only, nothing of them stays in the image
pipconf="$(mktemp)"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$pipconf"
chmod 644 "$pipconf"
ctrs=()
cleanup() {
  for c in "${ctrs[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  rm -f "$conf" "$conf.err" "$pipconf"
  if [ -n "${staged:-}" ]; then rm -rf "$staged"; fi
}
trap cleanup EXIT

base="${PYTHON_IMAGE:-}"
if [ -z "$base" ]; then
  if timeout 90 podman pull -q docker.io/library/python:3.11-slim-bookworm >/dev/null 2>&1; then
    base=docker.io/library/python:3.11-slim-bookworm
  else
    base=localhost/ovfast-base:bookworm-python3.11
    if ! podman image exists "$base"; then
      step "python:3.11-slim-bookworm cannot be pulled: importing a debootstrap stand-in as $base"
      podman import -q "$("$here/debian-root.sh")" "$base" >/dev/null
    fi
  fi
fi

build_args=(--build-arg "PYTHON_IMAGE=$base")
staged=""
if [ -n "$wheel" ]; then
  # into the build context, in a directory of its own: a wheel of the same name in wheelhouse/ stays as it is
  staged="$(mktemp -d "$src/wheelhouse/stage.XXXXXX" 2>/dev/null || { mkdir -p "$src/wheelhouse"; mktemp -d "$src/wheelhouse/stage.XXXXXX"; })"
  cp "$wheel" "$staged/"
  build_args+=(--build-arg "OVFAST_WHEEL=${staged#"$src/"}/$(basename "$wheel")")
fi
step "podman build $tag on $base${wheel:+ with $(basename "$wheel")}"
tb=$SECONDS
podman build -q --isolation chroot --network host --format docker "${build_args[@]}" \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro -v "$pipconf:/etc/pip.conf:ro" \
  -t "$tag" "$src" >/dev/null
size="$(podman image inspect --format '{{.Size}}' "$tag")"
step "built in $((SECONDS - tb)) s; image size $((size / 1000000)) MB ($size bytes)"

smoke_run() {  # NAME [podman run options...]
  local name="$1"; shift
  local grpc_port rest_port
  read -r grpc_port rest_port < <("$python" "$here/smoke.py" ports)
  ctrs+=("$name")
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true  # left by an interrupted run
  step "run $name ($*) on gRPC $grpc_port, REST $rest_port"
  # --health-interval disable: no systemd timer (there is no systemd here); `healthcheck run` still runs it
  # (podman 4.3 still complains on stderr that it cannot reach systemd: shown only on a failure)
  if ! podman run -d --name "$name" --network host --health-interval disable -e "OVFAST_HEALTH_PORT=$rest_port" \
      "$@" "$tag" \
      --port "$grpc_port" --rest_port "$rest_port" --grpc_bind_address 127.0.0.1 --rest_bind_address 127.0.0.1 \
      --metrics_enable >/dev/null 2>"$conf.err"; then
    cat "$conf.err" >&2; return 1
  fi
  if ! "$python" "$here/smoke.py" check --grpc "127.0.0.1:$grpc_port" --rest "127.0.0.1:$rest_port"; then
    podman logs "$name" 2>&1 | tail -40 >&2; return 1
  fi
  podman healthcheck run "$name" >/dev/null || { echo "test-image: HEALTHCHECK failed" >&2; return 1; }
  echo "smoke: healthcheck: ok"
  echo "smoke: runs as uid $(podman exec "$name" id -u)"
  if podman logs "$name" 2>&1 | grep -E "Traceback|ERROR|built the demo model in" >&2; then
    echo "test-image: unexpected errors (or a demo model rebuilt at start) in the log" >&2; return 1
  fi
  podman stop -t 30 "$name" >/dev/null 2>"$conf.err" || { cat "$conf.err" >&2; return 1; }
  local rc; rc="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
  if [ "$rc" != 0 ] || ! podman logs "$name" 2>&1 | grep -q "Server stopped"; then
    echo "test-image: stop gave exit status $rc" >&2; podman logs "$name" 2>&1 | tail -20 >&2; return 1
  fi
  echo "smoke: graceful stop: ok"
}

smoke_run ovfast-smoke-default
uid="$(podman image inspect --format '{{.Config.User}}' "$tag")"
[ "$uid" = 1000 ] || { echo "test-image: image user is '$uid', not 1000" >&2; exit 1; }
smoke_run ovfast-smoke-readonly --read-only --read-only-tmpfs=false --user 12345
step "passed in $((SECONDS - t0)) s; image $tag, $((size / 1000000)) MB"

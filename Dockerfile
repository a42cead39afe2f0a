# ovfast's container image. Multi-stage: `build` compiles the extension and repairs the wheel
# (packaging/build-wheel.sh: libjpeg, libpng and grpc++ bundled, OpenVINO from the openvino wheel); the
# runtime stage installs that wheel with the pinned dependencies of packaging/constraints.txt into a venv
# on the slim Python base, with no compiler and no -dev package.
#
#   docker build -t ovfast .                      (or: podman build --format docker -t ovfast .)
#   docker run -p 9000:9000 -p 8000:8000 ovfast   (the demo model; --read-only and any --user work)
#
# Build arguments:
#   PYTHON_IMAGE  the base of both stages (Debian 12 with python3 >= 3.11 and venv; default below)
#   OVFAST_WHEEL  a prebuilt repaired wheel inside the build context (e.g. wheelhouse/ovfast-...whl from
#                 packaging/build-wheel.sh) to install instead of compiling; empty = build from source
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG OVFAST_WHEEL=
# The COPY keys the layer cache to the source (podman/buildah do not hash what a RUN mounts); the build
# itself runs on the same files mounted read-only over it, writing only to /tmp (scikit-build-core's
# build-dir) and /wheelhouse: a read-only checkout builds.
COPY . /src
RUN --mount=type=bind,target=/src \
    set -eu; mkdir -p /wheelhouse; \
    if [ -n "$OVFAST_WHEEL" ]; then cp "/src/$OVFAST_WHEEL" /wheelhouse/; \
        cd /wheelhouse && sha256sum ovfast-*.whl >SHA256SUMS && exit 0; fi; \
    # Python.h: python:* images have it; Debian's python3 needs python3-dev
    dev="$(python3 -c 'import os, sysconfig; print("" if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else "python3-dev")')"; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        g++ libjpeg62-turbo-dev libpng-dev libgrpc++-dev protobuf-compiler-grpc $dev >/dev/null; \
    /src/packaging/build-wheel.sh /wheelhouse; \
    cd /wheelhouse && sha256sum ovfast-*.whl >SHA256SUMS

FROM ${PYTHON_IMAGE}
# OpenVINO device plugins left out: the GPU and NPU plugins (and the GPU kernel cache) need Intel's
# compute/NPU drivers, which this image does not have; build with OPENVINO_DROP_PLUGINS="" for an image
# that adds them
ARG OPENVINO_DROP_PLUGINS="intel_gpu intel_npu"
ENV PATH=/opt/ovfast/venv/bin:$PATH \
    OVFAST_CACHE=/opt/ovfast/cache \
    OVFAST_HEALTH_PORT=8000 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY packaging/constraints.txt /opt/ovfast/constraints.txt
# the wheel's checksum: a new wheel invalidates the cached install below, which only mounts the wheel
COPY --from=build /wheelhouse/SHA256SUMS /opt/ovfast/wheel.sha256
# one layer: the venv (without pip once done; [storage]: s3:// gs:// az:// model paths, as the OVMS
# image serves them, docs/storage.md), the demo model built now into a path any uid can read,
# and a non-root user in group 0 (OpenShift runs a random uid in group 0)
RUN --mount=type=bind,from=build,source=/wheelhouse,target=/wheelhouse \
    set -eu; \
    python3 -m venv /opt/ovfast/venv; \
    /opt/ovfast/venv/bin/pip install --no-cache-dir -q --disable-pip-version-check \
        -c /opt/ovfast/constraints.txt "$(ls /wheelhouse/ovfast-*.whl)[storage]"; \
    /opt/ovfast/venv/bin/pip uninstall -q -y pip setuptools; \
    site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    for p in $OPENVINO_DROP_PLUGINS; do rm -f "$site/openvino/libs/libopenvino_${p}_plugin.so"; done; \
    case " $OPENVINO_DROP_PLUGINS " in *" intel_gpu "*) rm -f "$site/openvino/libs/cache.json";; esac; \
    # what nothing runs: OpenVINO's C++ headers and pkg-config file, numpy's test suites
    rm -rf "$site/openvino/include" "$site/openvino/libs/tbb.pc"; \
    find "$site/numpy" -depth -type d -name tests -exec rm -rf {} +; \
    python3 -c 'from ovfast.demo import ensure_demo_model; print("demo model:", ensure_demo_model())'; \
    chmod -R a+rX /opt/ovfast; \
    useradd --uid 1000 --gid 0 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ovfast
USER 1000
WORKDIR /opt/ovfast
EXPOSE 9000 8000
# no curl in the image: Python asks the REST port's readiness endpoint (OVFAST_HEALTH_PORT if you move it)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ['OVFAST_HEALTH_PORT'], timeout=4)"]
ENTRYPOINT ["ovfast"]
CMD ["--port", "9000", "--rest_port", "8000"]

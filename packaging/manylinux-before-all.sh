#!/usr/bin/env bash
# cibuildwheel's before-all for the manylinux_2_28 (AlmaLinux 8) release builds ([tool.cibuildwheel] in
# pyproject.toml): the -devel packages of the libraries the extension links, as Debian 12 has them.
# libjpeg-turbo and libpng come from the distribution; grpc++ is built from source at the version the
# project builds against on Debian 12 (1.51), since AlmaLinux 8 has none. auditwheel then bundles them
# all into the wheel, exactly as packaging/build-wheel.sh does on Debian.
set -euo pipefail
GRPC_VERSION="${GRPC_VERSION:-1.51.3}"
dnf install -y -q libjpeg-turbo-devel libpng-devel openssl-devel git
src="$(mktemp -d)"
git clone -q --depth 1 --branch "v$GRPC_VERSION" --recurse-submodules --shallow-submodules \
  https://github.com/grpc/grpc "$src/grpc"
cmake -S "$src/grpc" -B "$src/build" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=ON -DgRPC_INSTALL=ON -DgRPC_BUILD_TESTS=OFF -DgRPC_BUILD_CODEGEN=OFF \
  -DgRPC_BUILD_GRPC_CPP_PLUGIN=OFF -DgRPC_SSL_PROVIDER=package -DCMAKE_INSTALL_PREFIX=/usr/local
cmake --build "$src/build" -j "$(nproc)"
cmake --install "$src/build"
rm -rf "$src"

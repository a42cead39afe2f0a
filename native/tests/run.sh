#!/usr/bin/env bash
# Builds and runs the native GoogleTest suites three ways, each in its own
# build directory under build/native-tests-*:
#   plain  every suite (RelWithDebInfo)
#   asan   every suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan   the suites that run threads (completion, clock, batching, metrics, custom_node_abi,
#          forward_queue, route_table, and any *scheduler* / *pool* / dag_* suite) under ThreadSanitizer
# Needs cmake >= 3.20, g++, libgtest-dev, libjpeg/libpng headers, and a Python
# ($PYTHON, default python3) with the openvino wheel, whose CMake package and
# libraries the tests build and run against. Exits non-zero if anything fails
# or no test ran; the other flavours still run, so one log shows everything.
# The sanitizer runtime options (tsan.supp included) are set on the CTest tests
# in native/tests/CMakeLists.txt, so a bare ctest in a build dir runs the same.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-python3}"
jobs="${OVFAST_TEST_JOBS:-2}"
ov_cmake="$("$python" -c 'import openvino, os; print(os.path.join(os.path.dirname(openvino.__file__), "cmake"))')" || {
  echo "native tests: no openvino wheel in $python" >&2
  exit 1
}

tsan_suites=()
for src in "$root"/native/tests/*_test.cpp; do
  suite="$(basename "$src" .cpp)"
  case "$suite" in
    completion_test | clock_test | batching_test | metrics_test | forward_queue_test | route_table_test | custom_node_abi_test | *scheduler* | *pool* | dag_*) tsan_suites+=("$suite") ;;
  esac
done

# run <flavour> <build type> <sanitizers> [suite ...]: configure, build, ctest (all suites when none named).
run() {
  local flavour=$1 build_type=$2 sanitize=$3
  shift 3
  local dir="$root/build/native-tests-$flavour" start=$SECONDS
  local targets=() filter=()
  if [ $# -gt 0 ]; then
    targets=(--target "$@")
    filter=(-R "^($(IFS='|'; echo "$*"))\$")
  fi
  echo "=== native tests: $flavour${sanitize:+ (-fsanitize=$sanitize)}"
  cmake -S "$root/native" -B "$dir" -DCMAKE_BUILD_TYPE="$build_type" -DOVFAST_BUILD_TESTS=ON \
    -DOVFAST_SANITIZE="$sanitize" -DOpenVINO_DIR="$ov_cmake" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j "$jobs" "${targets[@]}" || return 1
  ctest --test-dir "$dir" --output-on-failure --no-tests=error "${filter[@]}" || return 1
  echo "=== native tests: $flavour passed in $((SECONDS - start)) s"
}

failed=()
mkdir -p "$root/build"
run plain RelWithDebInfo "" || failed+=(plain)
run asan Debug address,undefined || failed+=(asan)
run tsan Debug thread "${tsan_suites[@]}" || failed+=(tsan)

echo "=== native tests: ${SECONDS} s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "=== native tests FAILED: ${failed[*]}" >&2
  exit 1
fi

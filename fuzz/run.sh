#!/usr/bin/env bash
# Builds and runs every fuzz target for a set time each. Not part of .ci/run.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]      (default 300 s, every target)
#
# Native libFuzzer targets (clang++, ASan + UBSan; native/fuzz/*.cpp, built by
# native/CMakeLists.txt with -DOVFAST_BUILD_FUZZERS=ON in build/fuzz):
#   kserve_decode  tfs_decode  image_decode  inflate
# Python atheris targets (fuzz/py/*.py, against the installed ovfast):
#   rest_infer (KServe REST JSON + binary extension)  tfs_rest (TFS REST JSON)  config (config.json)
# Needs clang, cmake, the build deps of the package, and a Python ($PYTHON, default python3) with
# ovfast installed; atheris is installed into it when missing. Corpora grow under build/fuzz-runs/<target>/
# (seeded from fuzz/seeds/<target>/ when there are seeds); a crash, leak or timeout leaves its input in
# build/fuzz-runs/artifacts/ and makes the script exit 1 after every target has run.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-300}"
shift || true
python="${PYTHON:-python3}"
native=(kserve_decode tfs_decode image_decode inflate)
py=(rest_infer tfs_rest config)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${native[@]}" "${py[@]}")
runs="$root/build/fuzz-runs"
mkdir -p "$runs/artifacts"

wants_native=0
for t in "${targets[@]}"; do
  case " ${native[*]} " in *" $t "*) wants_native=1 ;; esac
done
if [ $wants_native -eq 1 ]; then
  echo "=== building the native fuzz targets (build/fuzz)"
  cmake -S "$root" -B "$root/build/fuzz" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOVFAST_BUILD_FUZZERS=ON -DPython_EXECUTABLE="$(command -v "$python")" >"$runs/configure.log" 2>&1 ||
    { cat "$runs/configure.log"; exit 1; }
  fuzz_targets=()
  for t in "${native[@]}"; do fuzz_targets+=("fuzz_$t"); done
  cmake --build "$root/build/fuzz" -j "${OVFAST_FUZZ_JOBS:-2}" --target "${fuzz_targets[@]}" || exit 1
fi
if ! "$python" -c "import atheris" 2>/dev/null; then
  "$python" -m pip install -q atheris || exit 1
fi

failed=()
for t in "${targets[@]}"; do
  corpus="$runs/$t"
  mkdir -p "$corpus"
  seeds=()
  [ -d "$root/fuzz/seeds/$t" ] && seeds=("$root/fuzz/seeds/$t")
  args=(-max_total_time="$secs" -timeout=30 -rss_limit_mb=4096 -artifact_prefix="$runs/artifacts/$t-"
        -print_final_stats=1 "$corpus" "${seeds[@]}")
  case " ${native[*]} " in
    *" $t "*) cmd=("$(find "$root/build/fuzz" -name "fuzz_$t" -type f -perm -u+x | head -1)" "${args[@]}") ;;
    *) cmd=("$python" "$root/fuzz/py/fuzz_$t.py" "${args[@]}") ;;
  esac
  echo "=== fuzz $t for $secs s"
  if ASAN_OPTIONS=detect_leaks=1 "${cmd[@]}" >"$runs/$t.log" 2>&1; then
    grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)" "$runs/$t.log" | tail -2
  else
    echo "!!! $t failed: see $runs/$t.log"
    grep -E "ERROR|Uncaught|Traceback|timeout|artifact" "$runs/$t.log" | head -5
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "=== fuzz FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "=== fuzz: every target ran $secs s without a finding"

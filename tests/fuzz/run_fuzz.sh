#!/usr/bin/env bash
# Runs the libFuzzer targets of a GUST_FUZZ build (docs/FUZZING.md).
#
#   tests/fuzz/run_fuzz.sh [--build DIR] [--seconds N] [--smoke] [TARGET...]
#
# For each target (default: every *_fuzz in DIR/fuzz): replays its seed corpus
# (tests/fuzz/corpus/T) and regression inputs (tests/fuzz/regressions/T) once,
# then fuzzes for N seconds (-max_total_time) with its dictionary
# (tests/fuzz/dict/T.dict), and prints the executions and exec/s.
#  - without --smoke (make fuzz): new inputs accumulate in DIR/corpus/T, so
#    runs build on each other;
#  - with --smoke (make test-fuzz): a throw-away working corpus.
# Crashes, leaks (ASan's leak check is on), timeouts (-timeout, 10 s per
# input) and out-of-memory (-rss_limit_mb) stop the target: the reproducer is
# written to DIR/artifacts/T/ and the script exits 1 after naming it.
# Runs one target at a time, one process each; NICE (default 10) is its nice
# level, so fuzzing yields the CPU to anything else on the machine.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BUILD="build-asan"
SECONDS_EACH=300
SMOKE=0
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
NICE="${NICE:-10}"

if [ ${#TARGETS[@]} -eq 0 ]; then
  for bin in "$BUILD"/fuzz/*_fuzz; do
    [ -x "$bin" ] && TARGETS+=("$(basename "$bin" _fuzz)")
  done
fi
if [ ${#TARGETS[@]} -eq 0 ]; then
  echo "run_fuzz: no fuzz targets in $BUILD/fuzz (make asan)" >&2
  exit 2
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

total=0
summary=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/${t}_fuzz"
  seeds=("$HERE/corpus/$t")
  [ -d "$HERE/regressions/$t" ] && seeds+=("$HERE/regressions/$t")
  dict=()
  [ -f "$HERE/dict/$t.dict" ] && dict=(-dict="$HERE/dict/$t.dict")
  artifacts="$BUILD/artifacts/$t"
  mkdir -p "$artifacts"
  if [ "$SMOKE" -eq 1 ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
  else
    work="$BUILD/corpus/$t"
    mkdir -p "$work"
  fi
  log="$BUILD/fuzz-$t.log"
  # One fuzzing process, in-process (libFuzzer's default): -jobs=1 would fork
  # a child writing its output to ./fuzz-0.log instead.
  common=(-artifact_prefix="$artifacts/" -timeout=10 -rss_limit_mb=2048 -max_len=65536
          -print_final_stats=1)

  # 1. Every seed and regression input once: a fixed crash must stay fixed.
  # (Files, not directories: libFuzzer would copy inputs into the first directory.)
  mapfile -t inputs < <(find "${seeds[@]}" -type f | sort)
  if ! nice -n "$NICE" "$bin" "${common[@]}" "${inputs[@]}" > "$log" 2>&1; then
    echo "run_fuzz: $t FAILED replaying its corpus/regressions; see $log:" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$log" >&2 || tail -20 "$log" >&2
    exit 1
  fi
  # 2. Fuzzing for SECONDS_EACH.
  if ! nice -n "$NICE" "$bin" "${common[@]}" "${dict[@]}" -max_total_time="$SECONDS_EACH" \
      "$work" "${seeds[@]}" >> "$log" 2>&1; then
    echo "run_fuzz: $t FAILED while fuzzing; see $log:" >&2
    grep -E "ERROR|SUMMARY|Test unit written" "$log" >&2 || tail -20 "$log" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
  rate="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | awk '{print $2}')"
  total=$((total + ${runs:-0}))
  summary+=("$(printf '%-22s %12s execs %8s exec/s' "$t" "${runs:-?}" "${rate:-?}")")
  echo "run_fuzz: ${summary[-1]}"
  if [ "$SMOKE" -eq 1 ]; then rm -rf "$work"; trap - EXIT; fi
done
echo "run_fuzz: ---- ${#TARGETS[@]} targets, ${SECONDS_EACH}s each, no crash, leak or timeout"
printf 'run_fuzz: %s\n' "${summary[@]}"
printf 'run_fuzz: %-22s %12s execs\n' total "$total"

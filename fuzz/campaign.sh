#!/usr/bin/env bash
# The fuzzing campaign behind `make fuzz` and docs/fuzzing.md: every target in turn,
# one libFuzzer process at a time (no -jobs/-fork) at nice 19, each until 10^7
# executions or 30 CPU-minutes, whichever comes first; then minimize.sh minimises the
# target's corpus into the committed fuzz/corpus-min/<target>/ (every edge, within a
# size cap) and one summary line per target is appended to
# $FUZZ_LOG/summary.tsv (cov and ft: libFuzzer's last status line; pcs: the PCs
# instrumented in the target binary; corpus_min_kib: bytes of data, not disk blocks).
#
# Environment (defaults in brackets):
#   FUZZ_TARGETS      targets to run, in order [all, `cargo fuzz list` order]
#   FUZZ_RUNS         execution budget per target [10000000]
#   FUZZ_CPU_SECONDS  CPU-time budget per target, user+system [1800]; a watchdog sends
#                     SIGINT when it is spent (libFuzzer then prints its final stats)
#   FUZZ_WALL_SECONDS wall-clock backstop per target (-max_total_time) [3 x CPU budget]
#   FUZZ_DEADLINE     Unix time by which the whole campaign must end [none]: each target
#                     then gets at most an equal share of the time left (targets that
#                     stop early leave more to the next), and stops as "deadline"
#   FUZZ_LOG          where logs go [logs]
#   FUZZ_NO_BUILD     set to skip the build (binaries already built)
#
# Crashes land in fuzz/artifacts/<target>/ and make the script exit non-zero at the end.
set -uo pipefail
cd "$(dirname "$0")"

RUNS=${FUZZ_RUNS:-10000000}
CPU=${FUZZ_CPU_SECONDS:-1800}
WALL=${FUZZ_WALL_SECONDS:-$((3 * CPU))}
LOG=${FUZZ_LOG:-logs}
BIN=target/x86_64-unknown-linux-gnu/release
mkdir -p "$LOG"

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  # --locked: a stale fuzz/Cargo.lock is an error, not a silent rewrite (cargo fuzz
  # build has no --locked of its own, so the lock is checked first).
  cargo +nightly fetch --locked || { echo "fuzz/Cargo.lock is not current" >&2; exit 1; }
  nice -n 10 cargo +nightly fuzz build -s none || exit 1
fi
TARGETS=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}

TIMES=$(mktemp)
trap 'rm -f "$TIMES"' EXIT
snap_cpu() { # bash `times` in this shell (a subshell would report its own children)
  times >"$TIMES"
}
read_cpu() { # user+system CPU seconds of this shell's reaped children, from snap_cpu
  awk 'END { split($1, u, /[ms]/); split($2, s, /[ms]/);
    printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$TIMES"
}

cpu_seconds() { # user+system CPU seconds of a running pid, from /proc
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null) || return 1
  echo $((ticks / $(getconf CLK_TCK)))
}

[ -f "$LOG/summary.tsv" ] ||
  printf 'target\texecs\tcpu_s\twall_s\texecs_per_s\tcov\tft\tpcs\tcorpus_files\tcorpus_min_files\tcorpus_min_kib\tcrashes\tstop\n' >"$LOG/summary.tsv"
failed=0
left=$(wc -w <<<"$TARGETS")
for t in $TARGETS; do
  wall_t=$WALL
  if [ -n "${FUZZ_DEADLINE:-}" ]; then
    share=$(((FUZZ_DEADLINE - $(date +%s)) / left - 20)) # 20 s for the merge
    [ "$share" -lt "$wall_t" ] && wall_t=$share
    if [ "$wall_t" -lt 10 ]; then
      echo "== $t: skipped, past the deadline" | tee -a "$LOG/skipped.txt"
      left=$((left - 1))
      continue
    fi
  fi
  left=$((left - 1))
  mkdir -p "corpus/$t" "corpus-min/$t" "artifacts/$t" "seeds/$t"
  echo "== $t: up to $RUNS execs or $CPU CPU-s (wall limit $wall_t s)"
  start=$(date +%s)
  snap_cpu
  cpu0=$(read_cpu)
  nice -n 19 "$BIN/$t" -runs="$RUNS" -max_total_time="$wall_t" -print_final_stats=1 \
    -len_control=0 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" \
    "corpus/$t" "seeds/$t" "corpus-min/$t" >"$LOG/$t.log" 2>&1 &
  pid=$!
  stop=runs
  while kill -0 "$pid" 2>/dev/null; do
    used=$(cpu_seconds "$pid") || break
    if [ "$used" -ge "$CPU" ]; then
      stop=cpu
      kill -INT "$pid"
      break
    fi
    sleep 5
  done
  wait "$pid"
  rc=$?
  wall=$(($(date +%s) - start))
  [ "$rc" -ne 0 ] && [ "$stop" = runs ] && stop="exit-$rc"
  if [ "$stop" = runs ] && [ "$wall" -ge "$wall_t" ]; then
    if [ "$wall_t" -lt "$WALL" ]; then stop=deadline; else stop=wall; fi
  fi
  snap_cpu
  cpu=$(($(read_cpu) - cpu0))
  execs=$(awk '/^stat::number_of_executed_units:/ { n = $2 } END { print n }' "$LOG/$t.log")
  rate=$(awk '/^stat::average_exec_per_sec:/ { n = $2 } END { print n }' "$LOG/$t.log")
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$LOG/$t.log" | tail -1)
  cov=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$last")
  ft=$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$last")
  pcs=$(sed -nE 's/.*Loaded 1 PC tables \(([0-9]+) PCs\).*/\1/p' "$LOG/$t.log" | head -1)
  corpus=$(find "corpus/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  if [ "$crashes" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$stop" != cpu ]; }; then
    echo "!! $t: exit $rc, $crashes artifact(s) in artifacts/$t" >&2
    failed=1
  fi
  FUZZ_LOG="$LOG" ./minimize.sh "$t" >/dev/null || failed=1
  min_files=$(find "corpus-min/$t" -type f | wc -l)
  min_kib=$(du -sk --apparent-size "corpus-min/$t" | cut -f1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${execs:-?}" "$cpu" "$wall" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "${pcs:-?}" "$corpus" "$min_files" "$min_kib" "$crashes" "$stop" \
    | tee -a "$LOG/summary.tsv"
done
exit $failed

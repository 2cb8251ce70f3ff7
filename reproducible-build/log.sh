# frostamp boot image: logging and timing for the build scripts (sourced by lib.sh).
# Nothing here influences a build's output, so it is not part of any cache key.

log() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] ERROR: %s\n' "$*" >&2; exit 1; }

# children_cpu: set CHILDREN_CPU to the CPU seconds (user + system) of this shell's finished
# children (`times` must run in this shell, not in a $(...) subshell).
children_cpu() {
  local f; f=$(mktemp)
  times >"$f"
  CHILDREN_CPU=$(tail -n1 "$f" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.0f", t }')
  rm -f "$f"
}

# run_logged LOG WHAT CMD...: run CMD with its output in LOG; on failure show the tail.
# Reports wall-clock and CPU time (the machine may be shared: CPU time is the comparable one).
run_logged() {
  local logf=$1 what=$2; shift 2
  log "$what (log: $logf)"
  local t0=$SECONDS c0; children_cpu; c0=$CHILDREN_CPU
  # A subshell, so that a `die` (exit) inside CMD still ends here and shows the log.
  if ! ( "$@" ) >>"$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    die "$what failed after $((SECONDS - t0)) s; full log: $logf"
  fi
  children_cpu
  LAST_WALL=$((SECONDS - t0)) LAST_CPU=$((CHILDREN_CPU - c0))
  log "$what: done in ${LAST_WALL} s wall, ${LAST_CPU} s CPU"
}

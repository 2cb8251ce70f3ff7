#!/usr/bin/env bash
# scripts/callgrind-concurrency.sh [TOKENS] [CLIENTS]
#
# Instructions per token of the whole local cluster (all five nodes, every thread, user
# space), one client at a time against CLIENTS clients at once (issue 15). Does
# concurrency itself cost instructions (runtime scheduling, work stealing, wake-ups,
# locks), or do shared time rounds and batched frames save them? callgrind counts the
# same on a busy or an idle machine, so the answer does not depend on this VM's noise.
#
# `frostamp cluster up` starts every node under callgrind (FROSTAMP_NODE_WRAPPER="*:...").
# Every node runs about 50 times slower, all alike, so the nodes keep their speeds
# relative to each other; the time servers run natively. Then, after WARMUP tokens:
#   sequential: TOKENS requests, one after the other, spread over the five nodes in turn
#               (each node coordinates TOKENS/5), one kept-alive connection per node;
#   concurrent: the same TOKENS requests from CLIENTS curl processes at once, client k
#               on node (k mod 5) + 1, each over its own kept-alive connection.
# Counters of all five nodes are zeroed before and dumped after each phase; the table
# (scripts/callgrind-table.py) adds the five dumps and divides by the tokens issued
# (HTTP 200). The kernel's work (sockets, futexes, scheduling) is not in these counts.
#
# CALLGRIND_OPTS adds valgrind options, e.g. "--cache-sim=yes --branch-sim=yes" for
# simulated cache misses and mispredicted branches per token (printed under the table).
# Needs valgrind, curl, openssl, python3, FROSTAMP_ROUGHENOUGH (see Makefile) and
# target/release/{frostamp,frostamp-node} with --features insecure-dev-attestation
# (built here unless FROSTAMP_BIN_DIR is given). Output: OUT_DIR (default
# target/callgrind-concurrency): raw files, table-sequential.txt, table-concurrent.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

tokens=${1:-200}
clients=${2:-8}
warmup=${WARMUP:-20}
out=$(realpath -m "${OUT_DIR:-target/callgrind-concurrency}")
# shellcheck source=scripts/callgrind-common.sh
. scripts/callgrind-common.sh
callgrind_setup valgrind callgrind_control curl openssl python3
if [ $((tokens % clients)) -ne 0 ] || [ $((tokens % 5)) -ne 0 ]; then
  echo "TOKENS must be a multiple of 5 and of CLIENTS" >&2
  exit 2
fi

rm -rf "$out"
mkdir -p "$out"
dir="$out/cluster"
cleanup() { "$bin/frostamp" cluster down --dir "$dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "cluster up, every node under callgrind (a minute or two)"
FROSTAMP_NODE_WRAPPER="*:valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.%p --dump-instr=no --collect-jumps=no${CALLGRIND_OPTS:+ $CALLGRIND_OPTS}" \
  "$bin/frostamp" cluster up --node-bin "$bin/frostamp-node" --dir "$dir" >"$out/cluster-up.log"

pids=()
for i in 1 2 3 4 5; do pids+=("$(node "$i" pid)"); done

head -c 1000 /dev/urandom >"$out/data"
openssl ts -query -data "$out/data" -sha256 -cert -out "$out/q.tsq" 2>/dev/null

# curl config: N requests to each listed node, node after node ("1 2 3 4 5" = in turn).
config() { # file n nodes...
  local f=$1 n=$2 i k
  shift 2
  {
    echo 'silent'
    echo 'insecure' # the node's identity is pinned by the ceremony, not by a web PKI
    echo 'header = "Content-Type: application/timestamp-query"'
    echo "data-binary = \"@$out/q.tsq\""
    echo 'write-out = "%{http_code}\n"'
    for ((i = 0; i < n; i++)); do
      for k in "$@"; do
        echo "url = \"https://$(node "$k" public)/\""
        echo 'output = "/dev/null"'
      done
    done
  } >"$f"
}

phase() { # name: runs the requests written in $out/<name>-*.cfg, all at once
  local name=$1 f issued start
  for p in "${pids[@]}"; do callgrind_control --zero "$p" >/dev/null; done
  start=$(date +%s.%N)
  for f in "$out/$name"-*.cfg; do curl --config "$f" >"$f.status" & done
  wait
  for p in "${pids[@]}"; do callgrind_control --dump="$name" "$p" >/dev/null; done
  seconds=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  echo "$name: $seconds s; HTTP status codes:"
  cat "$out/$name"-*.cfg.status | sort | uniq -c
  issued=$(cat "$out/$name"-*.cfg.status | grep -c '^200$' || true)
  # shellcheck disable=SC2046
  python3 scripts/callgrind-table.py --tokens "$issued" --role "$name, $issued tokens" \
    $(grep -l "^desc: Trigger: .*$name" "$out"/callgrind.*) | tee "$out/table-$name.txt"
  if [ -n "${bg:-}" ]; then adjust "$out/table-$name.txt" "$issued" "$seconds" | tee -a "$out/table-$name.txt"; fi
}

# Per token without the idle work of the phase's duration, and with the commitments made
# set to what a token uses (three: the coordinator's own and one per co-signer; signers
# make them in batches of 64 ahead of the requests, so a phase makes more or fewer).
# One commitment costs two k·P products (k256 lincomb) and its encoding, both measured
# in the same dump; its decoding at the receiver (one square root per point) is left out.
adjust() { # table tokens seconds
  python3 - "$1" "$2" "$3" "$bg" <<'PY'
import re, sys
table, tokens, seconds, bg = open(sys.argv[1]).read(), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def row(label):
    m = re.search(re.escape(label) + r"\s+([0-9.]+)\s+([0-9.]+)", table)
    return float(m.group(1)), float(m.group(2))
total = float(re.search(r"= ([0-9.]+) M per token", table).group(1))
lincomb, lincomb_m = row("k·P, variable base (k256 lincomb; 2 per commitment)")
made, encode_m = row("commitments made and encoded")
idle = bg * seconds / tokens / 1e6
per_commitment = 2 * lincomb_m / lincomb + encode_m / made
adjusted = total - idle + (3 - made) * per_commitment
print(f"adjusted: {total:.2f} M per token - idle {idle:.2f} M ({seconds:.1f} s at {bg / 1e6:.2f} M/s)"
      f" + ({3 - made:+.2f} commitments x {per_commitment:.2f} M) = {adjusted:.2f} M per token")
PY
}

echo "warm-up: $warmup tokens over the five nodes"
config "$out/warmup-1.cfg" $((warmup / 5)) 1 2 3 4 5
phase warmup >/dev/null
# The cluster's work without requests (pings, time rounds, commitment refills) goes on
# at the same rate per wall-clock second under callgrind, where a phase lasts ~50 times
# longer than natively: measured here, subtracted per phase below.
idle=${IDLE_SECONDS:-20}
echo "idle: $idle s without requests"
for p in "${pids[@]}"; do callgrind_control --zero "$p" >/dev/null; done
sleep "$idle"
for p in "${pids[@]}"; do callgrind_control --dump=idle "$p" >/dev/null; done
# shellcheck disable=SC2046
python3 scripts/callgrind-table.py --tokens 1 --role "idle, $idle s" \
  $(grep -l "^desc: Trigger: .*idle" "$out"/callgrind.*) >"$out/table-idle.txt"
bg=$(python3 -c "import re,sys; t=open(sys.argv[1]).read(); print(int(re.search(r': 1 tokens, ([0-9,]+) instructions', t).group(1).replace(',', '')) / float(sys.argv[2]))" "$out/table-idle.txt" "$idle")
echo "idle: $(python3 -c "import sys; print(f'{float(sys.argv[1]) / 1e6:.2f}')" "$bg") M instructions per second, five nodes together"
config "$out/sequential-1.cfg" $((tokens / 5)) 1 2 3 4 5
echo "sequential: $tokens tokens, one client, node after node"
phase sequential
for ((k = 0; k < clients; k++)); do
  config "$out/concurrent-$k.cfg" $((tokens / clients)) $((k % 5 + 1))
done
echo "concurrent: $tokens tokens, $clients clients at once"
phase concurrent

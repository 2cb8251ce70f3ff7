#!/usr/bin/env bash
# scripts/callgrind-breakdown.sh [TOKENS]
#
# Instructions per token of one node of the local cluster, by role, counted by
# valgrind's callgrind (deterministic: independent of the machine's load), grouped into
# FROST arithmetic, TLS, HTTP, peer-message encoding, DER, hashing, allocation, the async
# runtime, ... by scripts/callgrind-table.py (issue 15).
#
# `frostamp cluster up` starts node 2 under callgrind (FROSTAMP_NODE_WRAPPER, a knob of
# the local cluster only; the node binary is the same), then:
#   coordinator: TOKENS requests to node 2 over one kept-alive HTTPS connection (curl);
#                node 2 coordinates each token and signs it with nodes 1 and 3;
#   signer:      TOKENS requests to node 1; node 1 picks the lowest-indexed peers with
#                commitments ready, node 2 and node 3, so node 2 signs each token;
#   coordinator-per-connection: as coordinator, but a new TLS connection per request
#                (`Connection: close`), what clients like `openssl ts` + curl cost.
# Counters are zeroed before and dumped after each phase (callgrind_control), after a
# warm-up of WARMUP tokens per phase (commitment queues filled, time-server delegations
# verified). What callgrind counts is user-space instructions of node 2's process: the
# kernel's work (sockets, scheduling) is not in it.
#
# CALLGRIND_OPTS adds valgrind options, e.g. "--cache-sim=yes --branch-sim=yes" for
# simulated cache misses and mispredicted branches per token (printed under the table).
# Needs valgrind, curl, openssl, target/release/{frostamp,frostamp-node} built with
# --features insecure-dev-attestation (built here unless FROSTAMP_BIN_DIR is given), and
# FROSTAMP_ROUGHENOUGH (see Makefile). NODE_BIN=path profiles another frostamp-node build
# (e.g. an earlier commit's) with this checkout's `frostamp`. Output: OUT_DIR (default target/callgrind) with the
# raw callgrind files and table-coordinator.txt, table-signer.txt,
# table-coordinator-per-connection.txt, table-raw.txt (the
# arithmetic alone, in process: `benches/cluster.rs --raw-tokens`).
set -euo pipefail
cd "$(dirname "$0")/.."

tokens=${1:-200}
warmup=${WARMUP:-20}
out=$(realpath -m "${OUT_DIR:-target/callgrind}")
# shellcheck source=scripts/callgrind-common.sh
. scripts/callgrind-common.sh
callgrind_setup valgrind callgrind_control callgrind_annotate curl openssl python3
node_bin=$(realpath "${NODE_BIN:-$bin/frostamp-node}") # NODE_BIN: profile another node build

rm -rf "$out"
mkdir -p "$out"
dir="$out/cluster"
cleanup() { "$bin/frostamp" cluster down --dir "$dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

FROSTAMP_NODE_WRAPPER="2:valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.node2 --dump-instr=no --collect-jumps=no${CALLGRIND_OPTS:+ $CALLGRIND_OPTS}" \
  "$bin/frostamp" cluster up --node-bin "$node_bin" --dir "$dir" >"$out/cluster-up.log"

pid2=$(node 2 pid)

head -c 1000 /dev/urandom >"$out/data"
openssl ts -query -data "$out/data" -sha256 -cert -out "$out/q.tsq" 2>/dev/null

# N requests to node $1 over one connection (with a third argument "close": one TLS
# connection per request, as `openssl ts` + curl make); prints the HTTP status codes, counted.
post() {
  local url n i cfg
  url="https://$(node "$1" public)/"
  n=$2
  cfg="$out/curl.cfg"
  {
    echo 'silent'
    echo 'insecure' # the node's identity is pinned by the ceremony, not by a web PKI
    echo 'header = "Content-Type: application/timestamp-query"'
    if [ "${3:-}" = close ]; then echo 'header = "Connection: close"'; fi
    echo "data-binary = \"@$out/q.tsq\""
    echo 'write-out = "%{http_code}\n"'
    for ((i = 0; i < n; i++)); do
      echo "url = \"$url\""
      echo 'output = "/dev/null"'
    done
  } >"$cfg"
  curl --config "$cfg" | sort | uniq -c
}

phase() { # name node [close]
  echo "warm-up: $warmup tokens via node $2"
  post "$2" "$warmup" "${3:-}"
  callgrind_control --zero "$pid2" >/dev/null
  echo "$1: $tokens tokens via node $2${3:+, one connection per request}"
  post "$2" "$tokens" "${3:-}" | tee "$out/status-$1.txt"
  callgrind_control --dump="$1" "$pid2" >/dev/null
  local file
  file=$(grep -l "^desc: Trigger: .*$1" "$out"/callgrind.node2* | head -n1)
  python3 scripts/callgrind-table.py --tokens "$tokens" --role "$1" "$file" | tee "$out/table-$1.txt"
}

phase coordinator 2
phase signer 1
phase coordinator-per-connection 2 close

# The bound: the same number of raw FROST 3-of-5 signatures in one process (three
# commitments, three shares, the aggregate with its verification: the arithmetic of one
# token across all parties), counted inside `raw_tokens` of the cluster bench only.
# Per token, coordinator + 2 x signer of the cluster set against this.
raw_bench=$(nice -n 10 cargo bench --locked --features insecure-dev-attestation --bench cluster --no-run 2>&1 |
  sed -n 's/.*Executable benches\/cluster.rs (\(.*\))/\1/p' | tail -n1)
echo "raw: $tokens signatures in process (benches/cluster.rs --raw-tokens)"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.raw" --dump-instr=no \
  --collect-jumps=no ${CALLGRIND_OPTS:-} '--toggle-collect=*raw_tokens*' "$raw_bench" --raw-tokens "$tokens" \
  2>"$out/valgrind-raw.log"
python3 scripts/callgrind-table.py --tokens "$tokens" --role raw "$out/callgrind.raw" | tee "$out/table-raw.txt"

# Sourced by scripts/callgrind-breakdown.sh and scripts/callgrind-concurrency.sh.

# callgrind_setup TOOL...: the release binaries in $bin (FROSTAMP_BIN_DIR, or built here
# with development attestation), and every TOOL on the PATH.
callgrind_setup() {
  bin=${FROSTAMP_BIN_DIR:-}
  if [ -z "$bin" ]; then
    nice -n 10 cargo build --release --locked --features insecure-dev-attestation --bins
    bin=target/release
  fi
  bin=$(realpath "$bin")
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
  done
}

# node N FIELD: a field (pid, public, ...) of node N in $dir/cluster.json.
node() {
  python3 -c 'import json,sys; n=[x for x in json.load(open(sys.argv[1]))["nodes"] if x["index"]==int(sys.argv[2])][0]; print(n[sys.argv[3]])' \
    "$dir/cluster.json" "$1" "$2"
}

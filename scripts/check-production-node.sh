#!/usr/bin/env bash
# The production frostamp-node (default features, as the image gets it) must contain
# no development-attestation code (DESIGN §4, non-negotiable 4). Builds it in its own
# target directory and inspects the binary: the marker strings and symbols that only
# the `insecure-dev-attestation` feature compiles in must be absent. As a control, the
# development build must contain them (so the check cannot pass vacuously).
set -euo pipefail
cd "$(dirname "$0")/.."
markers=(
  "FROSTAMP_INSECURE_DEV_PLATFORM"          # env var the dev node reads
  "FROSTAMP INSECURE DEV ATTESTATION PLATFORM" # PEM label of the dev platform secret
  "INSECURE development attestation"        # subject of dev ARK/ASK/VCEK
  "danger_with_insecure_dev_root"           # the only way to trust a dev root
)
check() { # $1 = binary, $2 = expect present (1) or absent (0)
  local found=0
  for m in "${markers[@]}"; do
    if grep -a -q -F -- "$m" "$1"; then
      found=$((found + 1))
      [ "$2" = 0 ] && echo "production frostamp-node contains development-attestation marker: $m" >&2
    fi
  done
  echo "$found"
}
CARGO_TARGET_DIR=target/production cargo build --locked --release --bin frostamp-node
prod=target/production/release/frostamp-node
n=$(check "$prod" 0)
if [ "$n" != 0 ]; then exit 1; fi
CARGO_TARGET_DIR=target/production-dev cargo build --locked --release --features insecure-dev-attestation --bin frostamp-node
dev=target/production-dev/release/frostamp-node
m=$(check "$dev" 1)
if [ "$m" = 0 ]; then
  echo "control failed: the development build contains none of the markers; the check is not meaningful" >&2
  exit 1
fi
echo "production frostamp-node: none of ${#markers[@]} development-attestation markers present (development build: $m present)"

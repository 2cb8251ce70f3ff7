#!/usr/bin/env bash
# scripts/measurements.sh generate|check [prod|dev|all]
#
# The published launch measurements: measurements/<version>.json for the production image
# (target/image/prod, `make image`) and measurements/<version>-dev.json for the development
# image (target/image/dev, `make image-dev`; NOT for production). <version> is the Cargo
# package version.
#
#   generate  recompute from the built image(s) and write the file(s)   (make measurements)
#   check     recompute and fail with a diff if a committed file differs; then recompute
#             every published digest with PyPI's sev-snp-measure (.venv, make interop-deps)
#             and fail on any disagreement                              (make measurements-check)
#
# The digests come from `frostamp measure --image-dir DIR --publish prod|dev` (the sev crate).
# FROSTAMP=path uses a given frostamp binary; otherwise it is built (MEASURE_FEATURES= selects
# cargo features; none by default, the computation does not depend on them).
# IMAGE_ROOT (default target/image) and OUT_DIR (default measurements) are for tests.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
which=${2:-all}
case "$mode" in generate|check) ;; *) echo "usage: $0 generate|check [prod|dev|all]" >&2; exit 2 ;; esac
case "$which" in prod) kinds=(prod) ;; dev) kinds=(dev) ;; all) kinds=(prod dev) ;;
  *) echo "usage: $0 generate|check [prod|dev|all]" >&2; exit 2 ;; esac

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || { echo "cannot read the package version from Cargo.toml" >&2; exit 1; }

if [ -z "${FROSTAMP:-}" ]; then
  features=()
  [ -n "${MEASURE_FEATURES:-}" ] && features=(--features "$MEASURE_FEATURES")
  cargo build --locked --quiet "${features[@]}" --bin frostamp
  FROSTAMP=target/debug/frostamp
fi

IMAGE_ROOT=${IMAGE_ROOT:-target/image}
OUT_DIR=${OUT_DIR:-measurements}
mkdir -p "$OUT_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

for kind in "${kinds[@]}"; do
  dir=$IMAGE_ROOT/$kind
  suffix=; [ "$kind" = dev ] && suffix=-dev
  file=$OUT_DIR/$version$suffix.json
  if [ ! -f "$dir/manifest.json" ]; then
    echo "$dir: no image (make image${suffix})" >&2
    exit 1
  fi
  "$FROSTAMP" measure --image-dir "$dir" --publish "$kind" > "$tmp/$kind.json"
  if [ "$mode" = generate ]; then
    mv "$tmp/$kind.json" "$file"
    echo "wrote $file"
    continue
  fi

  # check: the committed file must be exactly what the image gives.
  if [ ! -f "$file" ]; then
    echo "FAIL: $file is not committed; run 'make measurements' and commit it" >&2
    status=1
    continue
  fi
  if diff -u "$file" "$tmp/$kind.json"; then
    echo "OK: $file matches $dir"
  else
    echo "FAIL: $file differs from what $dir gives (diff above: - committed, + recomputed)." >&2
    echo "      If the image change is intended: make measurements, review, commit." >&2
    status=1
    continue
  fi

  # Independent recomputation of every published digest with sev-snp-measure.
  ssm=.venv/bin/sev-snp-measure
  if [ ! -x "$ssm" ]; then
    if [ -n "${CI:-}" ]; then echo "FAIL: $ssm missing (make interop-deps)" >&2; status=1; continue; fi
    echo "note: $ssm missing (make interop-deps): cross-check skipped" >&2
    continue
  fi
  python3 - "$file" "$dir" "$ssm" <<'EOF' || status=1
import json, subprocess, sys
path, d, ssm = sys.argv[1:4]
doc = json.load(open(path))
cmdline = open(f"{d}/cmdline", "rb").read().decode()
assert cmdline.rstrip("\n") == doc["launch"]["cmdline"], "cmdline differs from the image"
bad = 0
for e in doc["digests"]:
    out = subprocess.run(
        [ssm, "--mode", "snp", "--vcpus", str(e["vcpus"]), "--vcpu-type", e["vcpu_type"],
         "--ovmf", f"{d}/OVMF.fd", "--kernel", f"{d}/bzImage", "--initrd", f"{d}/initrd.cpio",
         "--append", doc["launch"]["cmdline"], "--guest-features", doc["launch"]["guest_features"],
         "--output-format", "hex"],
        check=True, capture_output=True, text=True).stdout.strip()
    ok = out == e["launch_digest"]
    bad += not ok
    print(f"  sev-snp-measure {e['vcpu_type']:<11} x{e['vcpus']}: {'MATCH' if ok else 'MISMATCH ' + out}")
if bad:
    sys.exit(f"FAIL: sev-snp-measure disagrees on {bad} digest(s) of {path}")
print(f"OK: sev-snp-measure agrees on all {len(doc['digests'])} digests of {path}")
EOF
done
exit $status

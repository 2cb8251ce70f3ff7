#!/usr/bin/env bash
# image-reproduce.sh: a relying party's rebuild (make reproduce).
# Rebuilds the production image from this checkout and the pinned inputs, from scratch (fresh
# output cache, fresh cargo target directory; only the sha256-pinned downloads are reused),
# into target/image/reproduce/prod, then prints MATCH or MISMATCH per artifact against
#   1. target/image/prod/manifest.json (the local `make image`), when present, and
#   2. measurements/<version>.json (the published artifact hashes and launch digests), when
#      present; the launch digests are recomputed from the rebuilt artifacts with
#      `frostamp measure` and compared per vCPU type and count.
# Exit status 0 only if everything compared matches.
#   --compare DIR   skip the rebuild: compare an image directory built elsewhere
#   MEASUREMENTS=FILE  compare against FILE instead of measurements/<version>.json
set -euo pipefail
. "$(dirname "$0")/../reproducible-build/lib.sh"
cd "$REPO_ROOT"
out=target/image/reproduce/prod
scratch="$FROSTAMP_CACHE/reproduce.$$"
if [ "${1:-}" = --compare ]; then
  out=${2:?--compare DIR}
  mkdir -p "$scratch"
else
  log "independent rebuild into $out (scratch cache $scratch; this takes the full cold build time)"
  "$RB_DIR/build-image.sh" --variant prod --fresh --cache "$scratch" --out "$out" ||
    die "the rebuild failed; its logs are kept in $scratch"
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
published=${MEASUREMENTS:-measurements/$version.json}

digests=""
if [ -f "$published" ]; then
  log "recomputing the launch digests of the rebuilt image (frostamp measure)"
  cargo build --locked --quiet --bin frostamp || true
  if [ -x target/debug/frostamp ] && target/debug/frostamp measure --help 2>/dev/null | grep -q -- '--publish'; then
    digests="$scratch/digests.json"
    target/debug/frostamp measure --image-dir "$out" --publish prod >"$digests" 2>"$scratch/measure.err" || {
      cat "$scratch/measure.err" >&2; digests=""; }
  fi
fi

set +e
OUT="$out" LOCAL=target/image/prod/manifest.json PUBLISHED="$published" DIGESTS="$digests" python3 - <<'PY'
import hashlib, json, os, sys
out = os.environ["OUT"]
names = ["bzImage", "initrd.cpio", "OVMF.fd", "cmdline"]
rebuilt = {n: hashlib.sha256(open(os.path.join(out, n), "rb").read()).hexdigest() for n in names}
bad = 0
compared = 0
def row(what, name, want, got):
    global bad, compared
    compared += 1
    ok = want == got
    bad += not ok
    print(f"{'MATCH   ' if ok else 'MISMATCH'} {what:<28} {name:<12} {got}" + ("" if ok else f"  (expected {want})"))
print(f"rebuilt image: {out}")
if os.path.exists(os.environ["LOCAL"]):
    m = json.load(open(os.environ["LOCAL"]))
    for n in names:
        row("local make image", n, m["artifacts"][n]["sha256"], rebuilt[n])
else:
    print(f"(no {os.environ['LOCAL']}: run `make image` to compare with a local build)")
pub = os.environ["PUBLISHED"]
if os.path.exists(pub):
    p = json.load(open(pub))
    for n in names:
        want = p.get("inputs", {}).get(n, {}).get("sha256")
        if want is None:
            print(f"(published {pub} has no sha256 for {n})")
            continue
        row(f"published {os.path.basename(pub)}", n, want, rebuilt[n])
    if os.environ["DIGESTS"]:
        d = json.load(open(os.environ["DIGESTS"]))
        mine = {(x["vcpu_type"], x["vcpus"]): x["launch_digest"] for x in d.get("digests", [])}
        for x in p.get("digests", []):
            k = (x["vcpu_type"], x["vcpus"])
            row("launch digest", f"{k[0]} x{k[1]}", x["launch_digest"], mine.get(k, "(not computed)"))
    else:
        print("(launch digests not recomputed: `frostamp measure --publish` is not available)")
else:
    print(f"(no published {pub} yet: artifact hashes compared with the local build only)")
if compared == 0:
    print("nothing to compare against: the rebuild's hashes are above"); sys.exit(0)
print(f"reproduce: {compared - bad} MATCH, {bad} MISMATCH")
sys.exit(1 if bad else 0)
PY
status=$?
rm -rf "$scratch"
exit $status

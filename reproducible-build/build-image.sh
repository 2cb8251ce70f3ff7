#!/usr/bin/env bash
# build-image.sh --variant prod|dev --out DIR [--cache DIR] [--fresh]
#
# Builds the frostamp boot image from pinned inputs and the working tree:
#   DIR/bzImage      guest kernel (pinned Debian linux-source-6.1 + image/kernel.config)
#   DIR/initrd.cpio  newc cpio holding only /init = frostamp-node (image/initramfs.list)
#   DIR/OVMF.fd      AmdSev OVMF (measured direct boot, SEV hashes table)
#   DIR/cmdline      the kernel command line (exact bytes, part of the measurement)
#   DIR/kernel.config  the kernel's full .config (informational)
#   DIR/manifest.json  sha256 and size of each artifact, the input hashes, the toolchain
#
# Each artifact is cached under the cache directory as <artifact>-<sha256 of its inputs>/
# (the inputs: pinned tarball hashes, config files, these scripts, the node's source files,
# Cargo.lock, the toolchain versions), so an unchanged input set costs seconds.
#   --cache DIR  output cache (default $FROSTAMP_CACHE = ~/.cache/frostamp); pinned downloads
#                stay in $FROSTAMP_INPUTS (default ~/.cache/frostamp/inputs) either way.
#   --source DIR take the node's source from DIR (a snapshot made by node_source_snapshot)
#                instead of the checkout
#   --fresh      build everything from scratch: a fresh cargo target directory and no cached
#                output is reused (use with an empty --cache for an independent rebuild).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant="" out="" fresh=0 print_keys=0 source_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --print-keys) print_keys=1; shift ;;
    --variant) variant=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --cache) FROSTAMP_CACHE=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --source) source_dir=$(cd "$2" && pwd); shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
case "$variant" in prod|dev) ;; *) die "--variant prod|dev is required" ;; esac
[ -n "$out" ] || [ $print_keys = 1 ] || die "--out DIR is required"
mkdir -p "$FROSTAMP_CACHE"
FROSTAMP_CACHE=$(cd "$FROSTAMP_CACHE" && pwd)
export FROSTAMP_CACHE
t_start=$SECONDS

[ $print_keys = 1 ] || fetch_inputs
: "${RUST_SYSROOT:=$(rust_sysroot)}"
export RUST_SYSROOT
envfp=$(env_fingerprint)
rustfp=$(rust_fingerprint)
sh_hash() { cat "$RB_DIR/lib.sh" "$@" | sha256_stdin; }

# key NAME...: sha256 over the lines given on stdin (the artifact's inputs).
key() { sha256_stdin; }
kernel_key=$( { echo "artifact kernel"; grep -E '^(KERNEL_TARBALL_SHA256|KBUILD_|SOURCE_DATE_EPOCH)' "$RB_DIR/pins.env";
  echo "fragment $(sha256_file "$REPO_ROOT/image/kernel.config")"; echo "scripts $(sh_hash "$RB_DIR/build-kernel.sh")";
  echo "$envfp"; } | key)
ovmf_key=$( { echo "artifact ovmf"; grep -E '^(EDK2_[A-Z]*_SHA256|EDK2_FIXED_BUILD_DIR|SOURCE_DATE_EPOCH)' "$RB_DIR/pins.env";
  echo "scripts $(sh_hash "$RB_DIR/build-ovmf.sh")"; echo "$envfp"; } | key)
# The node's source: hashed and built from one snapshot, so that edits to the checkout during a
# (long) build can neither slip into the binary nor make the cache key wrong.
if [ -z "$source_dir" ] && [ $print_keys = 0 ]; then
  source_dir="$FROSTAMP_CACHE/work/node-src-snapshot.$$"
  mkdir -p "$FROSTAMP_CACHE/work"
  trap 'rm -rf "$FROSTAMP_CACHE/work/node-src-snapshot.$$"' EXIT
  node_source_snapshot "$source_dir"
fi
src_hash=$(node_source_hash "${source_dir:-$REPO_ROOT}")
node_key=$( { echo "artifact node $variant"; echo "source $src_hash"; grep -E '^(NODE_REMAP_|SOURCE_DATE_EPOCH)' "$RB_DIR/pins.env";
  echo "scripts $(sh_hash "$RB_DIR/build-node.sh")"; echo "$rustfp"; echo "$envfp"; } | key)

if [ $print_keys = 1 ]; then
  # The cache keys, for scripts/check-reproducible.sh (no build, no download).
  printf 'kernel_key=%s\novmf_key=%s\nnode_key=%s\nsrc_hash=%s\n' "$kernel_key" "$ovmf_key" "$node_key" "$src_hash"
  exit 0
fi
mkdir -p "$out"; out=$(cd "$out" && pwd)

# cached NAME KEY FILE CMD...: FROSTAMP_CACHE/NAME-KEY/FILE, built by CMD (given the
# output dir and the log) unless present. Prints the path of the cached directory.
cached() {
  local name=$1 k=$2 file=$3; shift 3
  local dir="$FROSTAMP_CACHE/$name-$k"
  if [ $fresh = 0 ] && [ -f "$dir/$file" ]; then
    log "$name: cached ($dir)"
  else
    local part="$dir.partial.$$"
    rm -rf "$part"; mkdir -p "$part"
    run_logged "$part/build.log" "building $name" "$@" "$part"
    echo "wall ${LAST_WALL}s cpu ${LAST_CPU}s jobs $JOBS" >"$part/build-time"
    rm -rf "$dir"; mv -T "$part" "$dir"
    log "$name: cached in $dir"
  fi
  printf '%s\n' "$dir"
}

build_kernel() { "$RB_DIR/build-kernel.sh" "$1" "$FROSTAMP_CACHE/work/kernel.$$"; }
build_ovmf() { "$RB_DIR/build-ovmf.sh" "$1"; }
build_node() {
  local srcdir tdir
  if [ $fresh = 1 ]; then
    srcdir="$FROSTAMP_CACHE/work/node-src.$$"; tdir="$FROSTAMP_CACHE/work/node-target-$variant.$$"
  else
    # A persistent source snapshot and target directory per variant: dependencies are
    # compiled once (cargo rebuilds what changed; the output does not depend on the path).
    srcdir="$REPO_ROOT/target/image-build/$variant/src"; tdir="$REPO_ROOT/target/image-build/$variant/cargo-target"
  fi
  # (called under `if !`, where errexit is off: every step checks its status)
  node_source_snapshot "$srcdir" "$source_dir" "$src_hash" || return 1
  "$RB_DIR/build-node.sh" "$variant" "$srcdir" "$tdir" "$1" || return 1
  if [ $fresh = 1 ]; then rm -rf "$srcdir" "$tdir"; fi
}

kernel_dir=$(cached kernel "$kernel_key" bzImage build_kernel)
ovmf_dir=$(cached ovmf "$ovmf_key" OVMF.fd build_ovmf)
node_dir=$(cached "node-$variant" "$node_key" frostamp-node build_node)
node_sha=$(sha256_file "$node_dir/frostamp-node")
initrd_key=$( { echo "artifact initrd"; echo "node $node_sha"; echo "list $(sha256_file "$REPO_ROOT/image/initramfs.list")";
  grep -E '^SOURCE_DATE_EPOCH' "$RB_DIR/pins.env"; echo "scripts $(sh_hash "$RB_DIR/build-initrd.sh")"; cpio --version | head -n1; } | key)
build_initrd() { "$RB_DIR/build-initrd.sh" "$REPO_ROOT/image/initramfs.list" "$node_dir/frostamp-node" "$1/initrd.cpio"; }
initrd_dir=$(cached "initrd-$variant" "$initrd_key" initrd.cpio build_initrd)

# Assemble the image directory (replaced whole, so readers never see a mix).
tmp="$out.tmp.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
cp "$kernel_dir/bzImage" "$kernel_dir/kernel.config" "$tmp/"
cp "$initrd_dir/initrd.cpio" "$tmp/"
cp "$ovmf_dir/OVMF.fd" "$tmp/"
cp "$REPO_ROOT/image/cmdline" "$tmp/cmdline"
chmod 0644 "$tmp"/*
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/Cargo.toml" | head -n1)
git_commit=$(git -c safe.directory='*' -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
VARIANT=$variant VERSION=$version GIT_COMMIT=$git_commit SRC_HASH=$src_hash NODE_SHA=$node_sha \
KERNEL_KEY=$kernel_key OVMF_KEY=$ovmf_key NODE_KEY=$node_key INITRD_KEY=$initrd_key \
ENVFP=$envfp RUSTFP=$rustfp PINS="$RB_DIR/pins.env" DIR="$tmp" python3 - <<'PY'
import hashlib, json, os
d = os.environ["DIR"]
def art(name):
    b = open(os.path.join(d, name), "rb").read()
    return {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
pins = {}
for line in open(os.environ["PINS"]):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1)
        pins[k] = v.strip("'")
m = {
    "format": "frostamp-image-manifest/1",
    "variant": os.environ["VARIANT"],
    "frostamp_version": os.environ["VERSION"],
    "artifacts": {n: art(n) for n in ("bzImage", "initrd.cpio", "OVMF.fd", "cmdline")},
    "cmdline": open(os.path.join(d, "cmdline"), "rb").read().decode(),
    "informational": {"kernel.config": art("kernel.config"),
                      "frostamp-node": {"sha256": os.environ["NODE_SHA"]}},
    "inputs": {
        "node_source_sha256": os.environ["SRC_HASH"],
        "cache_keys": {"kernel": os.environ["KERNEL_KEY"], "ovmf": os.environ["OVMF_KEY"],
                       "node": os.environ["NODE_KEY"], "initrd": os.environ["INITRD_KEY"]},
        "pins": pins,
    },
    "build_environment": os.environ["ENVFP"].splitlines() + os.environ["RUSTFP"].splitlines(),
}
json.dump(m, open(os.path.join(d, "manifest.json"), "w"), indent=2, sort_keys=True)
open(os.path.join(d, "manifest.json"), "a").write("\n")
PY
echo "$git_commit" >"$tmp/git-commit"
rm -rf "$out"; mv -T "$tmp" "$out"
log "image ($variant) ready in $out ($((SECONDS - t_start)) s):"
(cd "$out" && for f in bzImage initrd.cpio OVMF.fd cmdline; do
  printf '  %-12s %9d bytes  sha256 %s\n' "$f" "$(stat -c %s "$f")" "$(sha256_file "$f")"; done) >&2

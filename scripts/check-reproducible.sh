#!/usr/bin/env bash
# check-reproducible.sh: the production image's artifacts are reproducible.
#
# Compares two independent builds of every artifact of the production image, made in two
# different directories, with no output shared between them (only the pinned, sha256-checked
# downloads and the crate download cache of the first builder are inputs they may share):
#   build A: the output `make image` cached under the same input key (build-image.sh, the
#            current user, umask 022, ~/.cache/frostamp/work and target/image-build); with
#            --full-a, or when the cache lacks it, a fresh build in <run>/a
#   build B: umask 077, in a directory under /tmp and, when run as root, as user nobody
#            (setpriv, no capabilities), from its own copies of the build scripts, the
#            source snapshot, the pinned inputs and the Rust toolchain (hard links where
#            possible: nobody cannot enter /root), with its own CARGO_HOME (crates are
#            downloaded again) and HOME
# The builds run one after the other (different wall-clock times; the firmware's fixed build
# path is reused, fresh, by both). Then bzImage, OVMF.fd, frostamp-node and initrd.cpio are
# compared byte for byte.
#
# A verdict is cached per artifact under ~/.cache/frostamp/verdicts/<artifact>-<input key>
# (the same keys build-image.sh caches outputs under), so a warm run takes seconds and a
# change to the node's source rebuilds only the node (twice). --force ignores the verdicts.
set -euo pipefail
. "$(dirname "$0")/../reproducible-build/lib.sh"

if [ "${1:-}" = --side ]; then
  # One builder: --side DIR ARTIFACT... (DIR/<artifact>/ gets the output, DIR/<artifact>.log the log).
  dir=$2; shift 2
  for a in "$@"; do
    case "$a" in
      kernel) run_logged "$dir/kernel.log" "[$(id -un), umask $(umask)] kernel" \
                "$RB_DIR/build-kernel.sh" "$dir/kernel" "$dir/work/kernel" ;;
      ovmf) run_logged "$dir/ovmf.log" "[$(id -un), umask $(umask)] firmware" "$RB_DIR/build-ovmf.sh" "$dir/ovmf" ;;
      node) node_source_snapshot "$dir/src" "$SRC_SNAPSHOT" "$SRC_HASH"
            run_logged "$dir/node.log" "[$(id -un), umask $(umask)] frostamp-node" \
              "$RB_DIR/build-node.sh" prod "$dir/src" "$dir/work/node-target" "$dir/node"
            rm -rf "$dir/work/node-target" ;;
      initrd) mkdir -p "$dir/initrd"
              run_logged "$dir/initrd.log" "[$(id -un), umask $(umask)] initrd" \
                "$RB_DIR/build-initrd.sh" "$REPO_ROOT/image/initramfs.list" "$NODE_BIN" "$dir/initrd/initrd.cpio" ;;
    esac
    echo "$a ${LAST_WALL}s/${LAST_CPU}s-cpu" >>"$dir/times"
  done
  rm -rf "$dir/work"
  exit 0
fi

force=0 full_a=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;       # ignore cached verdicts
    --full-a) full_a=1 ;;     # rebuild A from scratch too (three builds of each artifact in all)
    *) echo "usage: $0 [--force] [--full-a]" >&2; exit 2 ;;
  esac
done
run="$FROSTAMP_CACHE/check-reproducible.$$"
rm -rf "$run"; mkdir -p "$run/a"
chmod 0755 "$run"
# One snapshot of the node's source for both builds (the checkout may change during the run);
# the keys are computed from it.
export SRC_SNAPSHOT="$run/src"
node_source_snapshot "$SRC_SNAPSHOT"
eval "$("$RB_DIR/build-image.sh" --variant prod --print-keys --source "$SRC_SNAPSHOT")"
export SRC_HASH="$src_hash"
fetch_inputs
: "${RUST_SYSROOT:=$(rust_sysroot)}"; export RUST_SYSROOT
vdir="$FROSTAMP_CACHE/verdicts"; mkdir -p "$vdir"
self_hash=$(sha256_file "$0" | cut -c1-16)
declare -A key=([kernel]=$kernel_key [ovmf]=$ovmf_key [node]=$node_key)
todo=()
for a in kernel ovmf node; do
  v="$vdir/$a-${key[$a]}-$self_hash"
  if [ $force = 0 ] && [ -f "$v" ]; then log "reproducible (cached verdict): $(cat "$v")"; else todo+=("$a"); fi
done
# The initramfs is cheap: always built twice, from the node of this run or the cached one.
node_cached="$FROSTAMP_CACHE/node-prod-$node_key/frostamp-node"
if [[ ! " ${todo[*]} " =~ " node " ]] && [ ! -f "$node_cached" ]; then todo+=(node); fi

bdir=$(mktemp -d /tmp/frostamp-check-b.XXXXXX)
chmod 0755 "$bdir"
log "two independent builds of: ${todo[*]:-(nothing new)} + initrd; logs under $run/a and $bdir/b"

# Build A: by default the output `make image` cached under the same input key (it was built
# from these pinned inputs and this source, by build-image.sh, in its own directories), so a
# cold `make test` does not build the kernel, the firmware and the node a second time just to
# have something to compare B with. --full-a (or an artifact not in the cache) rebuilds A here.
declare -A cached_dir=([kernel]="$FROSTAMP_CACHE/kernel-$kernel_key" [ovmf]="$FROSTAMP_CACHE/ovmf-$ovmf_key" \
  [node]="$FROSTAMP_CACHE/node-prod-$node_key")
declare -A cached_file=([kernel]=bzImage [ovmf]=OVMF.fd [node]=frostamp-node)
build_a=()
for a in "${todo[@]}"; do
  d=${cached_dir[$a]}
  if [ $full_a = 0 ] && [ -f "$d/${cached_file[$a]}" ]; then
    mkdir -p "$run/a/$a"
    cp "$d/${cached_file[$a]}" "$run/a/$a/"
    [ "$a" = kernel ] && cp "$d/kernel.config" "$run/a/kernel/"
    echo "$a make-image-cache($(awk '{print $2}' "$d/build-time" 2>/dev/null || echo '?')s)" >>"$run/a/times"
    log "build A of $a: make image's cached output ($d)"
  else
    build_a+=("$a")
  fi
done
[ ${#build_a[@]} = 0 ] || (umask 022; "$0" --side "$run/a" "${build_a[@]}")
nodea=$node_cached; [[ " ${todo[*]} " =~ " node " ]] && nodea="$run/a/node/frostamp-node"
(umask 022; NODE_BIN=$nodea "$0" --side "$run/a" initrd)

# Build B: another user when we can switch, umask 077, everything it reads in its own tree.
link_or_copy() { cp -al "$1" "$2" 2>/dev/null || cp -a "$1" "$2"; }
mkdir -p "$bdir/inputs" "$bdir/repo/scripts" "$bdir/home" "$bdir/cargo-home" "$bdir/cache" "$bdir/b"
for f in "$KERNEL_TARBALL" "$EDK2_ORIG" "$EDK2_DEBIAN"; do link_or_copy "$FROSTAMP_INPUTS/$f" "$bdir/inputs/$f"; done
link_or_copy "$RUST_SYSROOT" "$bdir/rust"
cp -a "$RB_DIR" "$bdir/repo/reproducible-build"
cp -a "$REPO_ROOT/image" "$bdir/repo/image"
cp -a "$0" "$bdir/repo/scripts/check-reproducible.sh"
cp -a "$SRC_SNAPSHOT" "$bdir/src"
nodeb=$node_cached; [[ " ${todo[*]} " =~ " node " ]] && nodeb="$bdir/b/node/frostamp-node"
if [ "$nodeb" = "$node_cached" ]; then cp "$node_cached" "$bdir/node-cached"; nodeb="$bdir/node-cached"; fi
chmod -R a+rX "$bdir/repo" "$bdir/src" "$bdir/node-cached" 2>/dev/null || true
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  chown -R 65534:65534 "$bdir/home" "$bdir/cargo-home" "$bdir/cache" "$bdir/b"
  asb=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  buser="nobody (uid 65534)"
else
  asb=(); buser="$(id -un) (not root: same user)"
fi
"${asb[@]}" env HOME="$bdir/home" CARGO_HOME="$bdir/cargo-home" FROSTAMP_CACHE="$bdir/cache" \
  FROSTAMP_INPUTS="$bdir/inputs" RUST_SYSROOT="$bdir/rust" SRC_SNAPSHOT="$bdir/src" SRC_HASH="$SRC_HASH" \
  NODE_BIN="$nodeb" \
  bash -c 'umask 077; "$0" --side "$1" "${@:2}" initrd' "$bdir/repo/scripts/check-reproducible.sh" "$bdir/b" "${todo[@]}"

# Compare.
fail=0
report() { printf '%-14s %s\n' "$1" "$2"; }
declare -A file=([kernel]=kernel/bzImage [ovmf]=ovmf/OVMF.fd [node]=node/frostamp-node [initrd]=initrd/initrd.cpio)
for a in "${todo[@]}" initrd; do
  fa="$run/a/${file[$a]}" fb="$bdir/b/${file[$a]}"
  ta=$(awk -v a="$a" '$1==a{print $2}' "$run/a/times"); tb=$(awk -v a="$a" '$1==a{print $2}' "$bdir/b/times")
  if cmp -s "$fa" "$fb"; then
    s=$(sha256_file "$fa")
    line="$a: identical, sha256 $s, $(stat -c %s "$fa") bytes (A: $(id -un), umask 022, ${ta}s; B: $buser, umask 077, ${tb}s; $(date -u +%FT%TZ))"
    report "$a" "MATCH  $s"
    [ "$a" = initrd ] || echo "$line" >"$vdir/$a-${key[$a]}-$self_hash"
    echo "$line" >>"$run/verdict"
  else
    report "$a" "MISMATCH  A $(sha256_file "$fa" 2>/dev/null || echo missing)  B $(sha256_file "$fb" 2>/dev/null || echo missing)"
    cmp "$fa" "$fb" 2>&1 | head -n 3 >&2 || true
    fail=1
  fi
done
if [ -f "$run/a/kernel/kernel.config" ] && ! cmp -s "$run/a/kernel/kernel.config" "$bdir/b/kernel/kernel.config"; then
  report kernel.config MISMATCH; fail=1
fi
if [ $fail = 0 ]; then
  rm -rf "$run" "$bdir"
  echo "reproducible: every production artifact is byte-identical across two independent builds"
else
  echo "NOT reproducible: the two builds differ; both are kept in $run/a and $bdir/b" >&2
  exit 1
fi

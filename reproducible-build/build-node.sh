#!/usr/bin/env bash
# build-node.sh VARIANT SRC_DIR TARGET_DIR OUT_DIR
# frostamp-node for the image's /init: x86_64-unknown-linux-musl (static-pie), --locked,
# release profile of Cargo.toml, paths of the source, $CARGO_HOME and the target directory
# remapped so the binary does not depend on where it was built.
#   VARIANT prod: default features (no development attestation; what `make image` ships)
#   VARIANT dev:  --features insecure-dev-attestation (boot tests only)
# Writes OUT_DIR/frostamp-node.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
variant=$1 src=$2 tdir=$3 out=$4
case "$variant" in
  prod) features=() ;;
  dev) features=(--features insecure-dev-attestation) ;;
  *) die "variant must be prod or dev" ;;
esac
: "${RUST_SYSROOT:=$(rust_sysroot)}"
: "${CARGO_HOME:=$HOME/.cargo}"
mkdir -p "$tdir" "$out" "$CARGO_HOME"
src=$(cd "$src" && pwd); tdir=$(cd "$tdir" && pwd); ch=$(cd "$CARGO_HOME" && pwd)
target=x86_64-unknown-linux-musl
[ -d "$RUST_SYSROOT/lib/rustlib/$target" ] ||
  die "the Rust $target target is not installed: rustup target add $target"
rustflags="--remap-path-prefix=$src=$NODE_REMAP_SRC --remap-path-prefix=$ch=$NODE_REMAP_CARGO --remap-path-prefix=$tdir=/target"
(cd "$src" && clean_env CARGO_HOME="$ch" RUSTC="$RUST_SYSROOT/bin/rustc" CARGO_TARGET_DIR="$tdir" \
  RUSTFLAGS="$rustflags" CARGO_TERM_COLOR=never \
  "$RUST_SYSROOT/bin/cargo" build --locked --release --target "$target" --bin frostamp-node "${features[@]}")
bin="$tdir/$target/release/frostamp-node"
# Static: no program interpreter, no shared libraries.
if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then die "frostamp-node is not static"; fi
if readelf -dW "$bin" | grep -q '(NEEDED)'; then die "frostamp-node needs shared libraries"; fi
cp "$bin" "$out/frostamp-node"

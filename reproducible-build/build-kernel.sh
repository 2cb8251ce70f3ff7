#!/usr/bin/env bash
# build-kernel.sh OUT_DIR WORK_DIR
# The guest kernel: pinned Debian linux-source-6.1, `make tinyconfig` + image/kernel.config,
# every option of the fragment checked in the final .config, bzImage with fixed build stamps.
# Writes OUT_DIR/bzImage and OUT_DIR/kernel.config (the full .config).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=$1 work=$2
frag="$REPO_ROOT/image/kernel.config"
have_input "$KERNEL_TARBALL" "$KERNEL_TARBALL_SHA256" || die "pinned input $KERNEL_TARBALL missing (run fetch)"
rm -rf "$work"; mkdir -p "$work" "$out"
tar -xf "$FROSTAMP_INPUTS/$KERNEL_TARBALL" -C "$work"
src="$work/linux-source-6.1"
[ -f "$src/Makefile" ] || die "unexpected tarball layout"
kmake() {
  (cd "$src" && clean_env KBUILD_BUILD_TIMESTAMP="$KBUILD_BUILD_TIMESTAMP" KBUILD_BUILD_USER="$KBUILD_BUILD_USER" \
    KBUILD_BUILD_HOST="$KBUILD_BUILD_HOST" KBUILD_BUILD_VERSION="$KBUILD_BUILD_VERSION" \
    make ARCH=x86_64 "$@")
}
kmake tinyconfig
(cd "$src" && clean_env scripts/kconfig/merge_config.sh -m .config "$frag")
kmake olddefconfig

# merge_config.sh drops options whose dependencies are unmet without failing: check them all.
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*)
      grep -qxF -- "$line" "$src/.config" || { echo "kernel config: required '$line' not in .config" >&2; missing=1; } ;;
    "# CONFIG_"*" is not set")
      opt=${line#\# }; opt=${opt%% *}
      if grep -q "^$opt=" "$src/.config"; then echo "kernel config: '$opt' must be off but is $(grep "^$opt=" "$src/.config")" >&2; missing=1; fi ;;
  esac
done <"$frag"
[ $missing = 0 ] || die "the kernel configuration does not honour image/kernel.config"
echo "kernel config: every option of image/kernel.config is in effect"

kmake -j"$JOBS" bzImage
cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
cp "$src/.config" "$out/kernel.config"
rm -rf "$work"

#!/usr/bin/env bash
# build-ovmf.sh OUT_DIR
# The firmware: OvmfPkg/AmdSev/AmdSevX64.dsc (SEV-SNP, measured direct boot with the kernel
# hashes table) from Debian's edk2 source (orig + Debian patches), RELEASE, GCC5 toolchain tag.
# edk2's GenFw writes a debug entry sized by the build path, so it always builds at
# $EDK2_FIXED_BUILD_DIR (one build at a time: a lock serialises builds on this machine).
# Writes OUT_DIR/OVMF.fd.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=$1
mkdir -p "$out"
have_input "$EDK2_ORIG" "$EDK2_ORIG_SHA256" || die "pinned input $EDK2_ORIG missing (run fetch)"
have_input "$EDK2_DEBIAN" "$EDK2_DEBIAN_SHA256" || die "pinned input $EDK2_DEBIAN missing (run fetch)"
lock="$EDK2_FIXED_BUILD_DIR.lock"
[ -e "$lock" ] || (umask 000 && : >"$lock") 2>/dev/null || true
exec 9<"$lock"
flock 9
fixed="$EDK2_FIXED_BUILD_DIR"
if [ -e "$fixed" ]; then rm -rf "$fixed" || die "$fixed exists and cannot be removed (left by another user?)"; fi
mkdir -p "$fixed"
tar -xf "$FROSTAMP_INPUTS/$EDK2_ORIG" -C "$fixed"
ws="$fixed/edk2-2025.02"
tar -xf "$FROSTAMP_INPUTS/$EDK2_DEBIAN" -C "$ws"
# Debian's patch series (3.0 quilt format), in order.
while read -r p opts; do
  case "$p" in ''|'#'*) continue ;; esac
  patch -d "$ws" -s -p1 ${opts:-} <"$ws/debian/patches/$p"
done <"$ws/debian/patches/series"
# An empty grub.efi newer than grub.cfg/grub.sh: the PREBUILD step keeps it instead of
# building GRUB (not reproducible, and not used: the kernel is booted directly).
touch -d "@$SOURCE_DATE_EPOCH" "$ws/OvmfPkg/AmdSev/Grub/grub.cfg" "$ws/OvmfPkg/AmdSev/Grub/grub.sh"
: >"$ws/OvmfPkg/AmdSev/Grub/grub.efi"
cd "$ws"
clean_env PYTHON_COMMAND=python3 bash -c 'set -e; . ./edksetup.sh >/dev/null; make -C BaseTools -j'"$JOBS"' ARCH=X64'
clean_env PYTHON_COMMAND=python3 bash -c 'set -e; . ./edksetup.sh >/dev/null;
  build -a X64 -t GCC5 -b RELEASE -n '"$JOBS"' -p OvmfPkg/AmdSev/AmdSevX64.dsc'
cp "$ws/Build/AmdSev/RELEASE_GCC5/FV/OVMF.fd" "$out/OVMF.fd"
cd /
rm -rf "$fixed"

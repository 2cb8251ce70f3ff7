#!/usr/bin/env bash
# build-initrd.sh LIST NODE_BINARY OUT_FILE
# The initramfs: an uncompressed newc cpio built from LIST (image/initramfs.list, the subset of
# the kernel's gen_init_cpio syntax we allow: `file <path> <source> <mode> <uid> <gid>` with
# source @NODE@ = the frostamp-node binary). Entries sorted, owner 0:0, inode numbers
# renumbered, mtime = SOURCE_DATE_EPOCH, modes exactly as listed (no umask influence).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
list=$1 node=$2 outf=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
names=()
while read -r kind name source mode uid gid rest; do
  case "$kind" in ''|'#'*) continue ;; esac
  [ "$kind" = file ] || die "initramfs.list: only 'file' entries are allowed (got '$kind')"
  [ -z "${rest:-}" ] || die "initramfs.list: trailing fields in '$kind $name'"
  [ "$uid:$gid" = 0:0 ] || die "initramfs.list: $name must be owned by 0:0"
  case "$name" in /*/*|/) die "initramfs.list: only top-level files ($name)" ;; /*) ;; *) die "initramfs.list: $name must be absolute" ;; esac
  [[ "$mode" =~ ^0[0-7]{3}$ ]] || die "initramfs.list: bad mode $mode"
  [ "$source" = @NODE@ ] && source=$node
  cp "$source" "$stage/${name#/}"
  chmod "$mode" "$stage/${name#/}"
  touch -h -d "@$SOURCE_DATE_EPOCH" "$stage/${name#/}"
  names+=("${name#/}")
done <"$list"
[ ${#names[@]} -gt 0 ] || die "initramfs.list lists no file"
(cd "$stage" && printf '%s\n' "${names[@]}" | LC_ALL=C sort |
  cpio --quiet -o -H newc --reproducible --owner=0:0) >"$outf.part"
mv "$outf.part" "$outf"

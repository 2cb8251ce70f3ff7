#!/usr/bin/env bash
# The production frostamp-node (default features, as the image gets it) must contain
# no development-attestation code (DESIGN §4, non-negotiable 4). Inspects the node the
# production image really boots (the `/init` of target/image/prod/initrd.cpio, built by
# `make image`): the marker strings and symbols that only the `insecure-dev-attestation`
# feature compiles in must be absent. As a control, the development image's node
# (target/image/dev) must contain them (so the check cannot pass vacuously). Checking
# the images' own binaries, rather than building two more nodes, is also what keeps a
# cold `make test` within its time (issue 13, item 6).
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node_of() { # $1 = image directory: its initrd's /init, extracted to $tmp/$2
  local initrd=$1/initrd.cpio
  [ -f "$initrd" ] || { echo "$initrd missing: run make image image-dev first" >&2; exit 1; }
  (cd "$tmp" && cpio --quiet -i --to-stdout init <"$OLDPWD/$initrd" >"$2")
  [ -s "$tmp/$2" ] || { echo "$initrd holds no /init" >&2; exit 1; }
  echo "$tmp/$2"
}
prod=$(node_of target/image/prod prod-init)
n=$(check "$prod" 0)
if [ "$n" != 0 ]; then exit 1; fi
dev=$(node_of target/image/dev dev-init)
m=$(check "$dev" 1)
if [ "$m" = 0 ]; then
  echo "control failed: the development build contains none of the markers; the check is not meaningful" >&2
  exit 1
fi
echo "production image /init (frostamp-node): none of ${#markers[@]} development-attestation markers present (development build: $m present)"

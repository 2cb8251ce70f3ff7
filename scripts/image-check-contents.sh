#!/usr/bin/env bash
# image-check-contents.sh PROD_DIR [DEV_DIR]
# What the built image contains, checked from the artifacts themselves (DESIGN §1, §6):
#   - the kernel was configured without loadable modules and without the block layer, so no
#     block device driver can exist (kernel.config is the .config the bzImage was built from);
#   - the production initramfs holds exactly one file, /init, a static frostamp-node whose
#     bytes are the production build (no development-attestation marker); the dev image's
#     /init does carry the marker (control: the check can fail);
#   - bzImage is an EFI-stub kernel; the command line has no trailing newline.
set -euo pipefail
prod=$(cd "${1:?usage: image-check-contents.sh PROD_DIR [DEV_DIR]}" && pwd)
dev=${2:-}
[ -z "$dev" ] || dev=$(cd "$dev" && pwd)
pass=0 failed=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
# Marker only the insecure-dev-attestation feature compiles in (see scripts/check-production-node.sh).
DEV_MARKER=FROSTAMP_INSECURE_DEV_PLATFORM

cfg="$prod/kernel.config"
[ -f "$cfg" ] || { echo "FAIL: $cfg missing (make image)" >&2; exit 1; }
if grep -qx '# CONFIG_MODULES is not set' "$cfg" && ! grep -q '^CONFIG_MODULES=' "$cfg"; then
  ok "kernel: no loadable module support (# CONFIG_MODULES is not set)"
else bad "kernel: CONFIG_MODULES is enabled"; fi
if grep -qx '# CONFIG_BLOCK is not set' "$cfg" && ! grep -q '^CONFIG_BLOCK=' "$cfg"; then
  ok "kernel: no block layer (# CONFIG_BLOCK is not set)"
else bad "kernel: CONFIG_BLOCK is enabled"; fi
drivers=$(grep -E '^CONFIG_(BLK_DEV_[A-Z0-9_]+|VIRTIO_BLK|SCSI|ATA|NVME_CORE|MD|MMC_BLOCK|MTD_BLOCK|SWAP)=' "$cfg" |
  grep -v '^CONFIG_BLK_DEV_INITRD=' || true)
if [ -z "$drivers" ]; then ok "kernel: no block device driver, no swap (BLK_DEV_INITRD is the initramfs loader)"
else bad "kernel: block drivers enabled: $drivers"; fi
for o in CONFIG_SEV_GUEST=y CONFIG_AMD_MEM_ENCRYPT=y CONFIG_VIRTIO_NET=y CONFIG_SERIAL_8250_CONSOLE=y CONFIG_EFI_STUB=y CONFIG_FW_CFG_SYSFS=y; do
  if grep -qx "$o" "$cfg"; then ok "kernel: $o"; else bad "kernel: $o missing"; fi
done
if [ "$(head -c2 "$prod/bzImage")" = MZ ] && grep -qa 'HdrS' <(head -c 1024 "$prod/bzImage"); then
  ok "bzImage: x86 boot protocol header and PE/EFI stub ($(stat -c %s "$prod/bzImage") bytes)"
else bad "bzImage: not an EFI-stub bzImage"; fi

# check_initrd DIR EXPECT_MARKER(0|1)
check_initrd() {
  local d=$1 want=$2 listing n tmp
  listing=$(cpio --quiet -itv <"$d/initrd.cpio")
  n=$(printf '%s\n' "$listing" | grep -c .)
  if [ "$n" = 1 ] && printf '%s\n' "$listing" | grep -Eq '^-r-x------ +1 root +root .* init$'; then
    ok "$d/initrd.cpio: exactly one file: $(printf '%s' "$listing" | tr -s ' ')"
  else
    bad "$d/initrd.cpio: expected exactly one file /init (mode 0500, root): got $n entries:"; printf '%s\n' "$listing" >&2
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && cpio --quiet -id <"$d/initrd.cpio" init)
  if readelf -lW "$tmp/init" | grep -q 'Requesting program interpreter' || readelf -dW "$tmp/init" | grep -q '(NEEDED)'; then
    bad "$d: /init is not statically linked"
  else ok "$d: /init is a static executable ($(stat -c %s "$tmp/init") bytes)"; fi
  local want_sha
  want_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["informational"]["frostamp-node"]["sha256"])' "$d/manifest.json")
  if [ "$(sha256sum <"$tmp/init" | cut -d' ' -f1)" = "$want_sha" ]; then ok "$d: /init is the frostamp-node of manifest.json"
  else bad "$d: /init differs from the frostamp-node recorded in manifest.json"; fi
  if grep -qaF "$DEV_MARKER" "$tmp/init"; then has=1; else has=0; fi
  if [ "$has" = "$want" ]; then
    ok "$d: development-attestation marker $([ "$want" = 1 ] && echo present, as a dev image must || echo absent)"
  else bad "$d: development-attestation marker $([ "$has" = 1 ] && echo PRESENT in a production image || echo missing from the dev image)"; fi
  rm -rf "$tmp"
}
check_initrd "$prod" 0
[ -n "$dev" ] && check_initrd "$dev" 1
if [ "$(tail -c1 "$prod/cmdline" | od -An -c | tr -d ' ')" != '\n' ]; then ok "cmdline: '$(cat "$prod/cmdline")' (no trailing newline)"
else bad "cmdline ends with a newline"; fi
echo "image-contents: $pass passed, $failed failed"
[ "$failed" = 0 ]

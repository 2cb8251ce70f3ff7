#!/usr/bin/env bash
# image-launch-command.sh [IMAGE_DIR]
# Prints the QEMU (>= 9.1, KVM on an SEV-SNP host) command line that launches one frostamp node
# from IMAGE_DIR (default target/image/prod) with measured direct boot: OVMF (AmdSev build)
# hashes bzImage, initrd.cpio and the command line into the SNP launch measurement
# (kernel-hashes=on). The launch digest depends on the firmware, kernel, initrd, cmdline,
# vCPU count, vCPU type and guest features; it does NOT depend on the memory size, the
# fw_cfg configuration or the network. Settings (environment):
#   VCPUS=2        vCPU count            (measured)
#   CPU=EPYC-v4    vCPU type             (measured; EPYC-Milan, EPYC-Genoa also published)
#   MEM=2G         guest memory          (not measured)
#   POLICY=0x30000 SNP guest policy: SMT allowed, no debug, no migration agent (in the report)
#   CONFIG=node.json  per-node settings via fw_cfg opt/frostamp/config (not measured, untrusted)
#   PUBLIC_PORT=8443 PEER_PORT=9443  host ports forwarded to the node's listeners
#   NETDEV='user,id=net0,hostfwd=...'  override the network backend (e.g. tap,id=net0,...)
set -euo pipefail
img=${1:-target/image/prod}
[ -f "$img/bzImage" ] || { echo "no image in $img (make image)" >&2; exit 1; }
img=$(cd "$img" && pwd)
VCPUS=${VCPUS:-2} CPU=${CPU:-EPYC-v4} MEM=${MEM:-2G} POLICY=${POLICY:-0x30000}
CONFIG=${CONFIG:-node.json} PUBLIC_PORT=${PUBLIC_PORT:-8443} PEER_PORT=${PEER_PORT:-9443}
NETDEV=${NETDEV:-user,id=net0,hostfwd=tcp::${PUBLIC_PORT}-:8443,hostfwd=tcp::${PEER_PORT}-:9443}
cmdline=$(cat "$img/cmdline")
# Print each argument for a POSIX shell: as is when it is plain, else in single quotes.
q() {
  local a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,+@%-]*$ ]] && [ -n "$a" ]; then printf ' %s' "$a"
    else printf " '%s'" "${a//\'/\'\\\'\'}"; fi
  done
}
printf 'qemu-system-x86_64'
q -enable-kvm -nodefaults -nographic -no-reboot
printf ' \\\n '; q -machine q35,confidential-guest-support=sev0,memory-backend=ram1
printf ' \\\n '; q -object "memory-backend-memfd,id=ram1,size=$MEM,share=true,prealloc=false" -m "$MEM"
printf ' \\\n '; q -object "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=$POLICY,kernel-hashes=on"
printf ' \\\n '; q -cpu "$CPU" -smp "$VCPUS"
printf ' \\\n '; q -bios "$img/OVMF.fd"
printf ' \\\n '; q -kernel "$img/bzImage" -initrd "$img/initrd.cpio" -append "$cmdline"
printf ' \\\n '; q -fw_cfg "name=opt/frostamp/config,file=$CONFIG"
printf ' \\\n '; q -netdev "$NETDEV" -device virtio-net-pci,netdev=net0,disable-legacy=on,iommu_platform=true,romfile=
printf ' \\\n '; q -serial stdio
printf '\n'

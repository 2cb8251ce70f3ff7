# frostamp boot image: shared shell functions for the build scripts (sourced, bash).
# Nothing here writes outside $FROSTAMP_CACHE, the output directories the caller names,
# and the firmware's fixed build path ($EDK2_FIXED_BUILD_DIR).

RB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$RB_DIR/.." && pwd)
# shellcheck source=pins.env
. "$RB_DIR/pins.env"

: "${FROSTAMP_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/frostamp}"
# Downloaded pinned inputs (verified by sha256) may be shared between builds; outputs may not.
: "${FROSTAMP_INPUTS:=$FROSTAMP_CACHE/inputs}"
: "${JOBS:=$(nproc)}"
export FROSTAMP_CACHE FROSTAMP_INPUTS JOBS

# Builds run in a clean environment: locale, time zone and the fixed epoch only.
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Logging and timing (log.sh) cannot change what a build produces, so it is not part of the
# cache keys; everything else in this file is.
. "$RB_DIR/log.sh"

sha256_file() { sha256sum "$1" | cut -d' ' -f1; }
sha256_stdin() { sha256sum | cut -d' ' -f1; }

# clean_env CMD...: run CMD with only the variables a reproducible build may see.
clean_env() {
  env -i PATH="$SAFE_PATH" HOME="${BUILD_HOME:-$HOME}" LC_ALL=C LANG=C TZ=UTC \
    SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$@"
}

# The toolchain that turns the pinned sources into the image. It is part of every cache key and
# of manifest.json: a relying party needs the same versions (Debian bookworm, see README.md).
env_fingerprint() {
  if command -v dpkg-query >/dev/null; then
    dpkg-query -W -f='${Package} ${Version}\n' gcc-12 cpp-12 g++-12 binutils libc6-dev make flex bison bc \
      libelf-dev libssl-dev nasm acpica-tools uuid-dev python3.11 cpio xz-utils tar perl-base musl musl-dev musl-tools 2>/dev/null || true
  fi
  cc --version | head -n1
  x86_64-linux-musl-gcc --version 2>/dev/null | head -n1 || echo "x86_64-linux-musl-gcc missing"
  ld --version | head -n1
  make --version | head -n1
  nasm -v 2>/dev/null || echo "nasm missing"
  cpio --version | head -n1
  python3 --version
}

# Rust toolchain: the one rust-toolchain.toml selects (resolved once, then used directly,
# so builds by another user do not need to write to rustup's directories).
rust_sysroot() { (cd "$REPO_ROOT" && rustc --print sysroot); }
rust_fingerprint() {
  local sr; sr=$(rust_sysroot)
  "$sr/bin/rustc" -vV
  "$sr/bin/cargo" -V
  [ -d "$sr/lib/rustlib/x86_64-unknown-linux-musl" ] || echo "musl target missing"
}

# ---------------------------------------------------------------- pinned inputs
APT_DIR="$FROSTAMP_CACHE/apt"
apt_opts() {
  printf '%s\n' -o "Dir::Etc::sourcelist=$APT_DIR/sources.list" -o "Dir::Etc::sourceparts=$APT_DIR/sources.list.d" \
    -o "Dir::Etc::preferencesparts=$APT_DIR/preferences.d" -o "Dir::State::Lists=$APT_DIR/lists" \
    -o "Dir::Cache=$APT_DIR/cache" -o "Dir::State::status=$APT_DIR/status" -o "APT::Sandbox::User=root" \
    -o "Debug::NoLocking=1"
}
# A private apt configuration (never the machine's): Debian's archive for the pinned suites.
apt_private_update() {
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/sources.list.d" "$APT_DIR/preferences.d"
  : >"$APT_DIR/status"
  cat >"$APT_DIR/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security trixie-security main
SRC
  local o; mapfile -t o < <(apt_opts)
  apt-get "${o[@]}" -qq update
}

# have_input FILE SHA256: the pinned file is present and intact.
have_input() { [ -f "$FROSTAMP_INPUTS/$1" ] && [ "$(sha256_file "$FROSTAMP_INPUTS/$1")" = "$2" ]; }

# snapshot_get FILE SHA1 SHA256: the Debian snapshot archive keeps every file it archived.
snapshot_get() {
  command -v curl >/dev/null || return 1
  log "fetching $1 from snapshot.debian.org/file/$2"
  curl -fsSL --retry 3 -o "$FROSTAMP_INPUTS/$1.part" "https://snapshot.debian.org/file/$2" &&
    mv "$FROSTAMP_INPUTS/$1.part" "$FROSTAMP_INPUTS/$1" && have_input "$1" "$3"
}

fetch_inputs() {
  mkdir -p "$FROSTAMP_INPUTS"
  local need=0
  have_input "$KERNEL_TARBALL" "$KERNEL_TARBALL_SHA256" || need=1
  have_input "$EDK2_ORIG" "$EDK2_ORIG_SHA256" || need=1
  have_input "$EDK2_DEBIAN" "$EDK2_DEBIAN_SHA256" || need=1
  [ $need = 0 ] && return 0
  log "fetching pinned inputs into $FROSTAMP_INPUTS"
  apt_private_update || log "apt update failed; trying the snapshot archive"
  local o; mapfile -t o < <(apt_opts)
  if ! have_input "$KERNEL_TARBALL" "$KERNEL_TARBALL_SHA256"; then
    if ! have_input "$KERNEL_DEB" "$KERNEL_DEB_SHA256"; then
      (cd "$FROSTAMP_INPUTS" && apt-get "${o[@]}" -qq download "$KERNEL_PKG=$KERNEL_VERSION") ||
        snapshot_get "$KERNEL_DEB" "$KERNEL_DEB_SHA1" "$KERNEL_DEB_SHA256" || true
      have_input "$KERNEL_DEB" "$KERNEL_DEB_SHA256" ||
        die "cannot obtain $KERNEL_DEB with sha256 $KERNEL_DEB_SHA256 (see reproducible-build/README.md)"
    fi
    dpkg-deb --fsys-tarfile "$FROSTAMP_INPUTS/$KERNEL_DEB" |
      tar -xO ./usr/src/linux-source-6.1.tar.xz >"$FROSTAMP_INPUTS/$KERNEL_TARBALL.part"
    mv "$FROSTAMP_INPUTS/$KERNEL_TARBALL.part" "$FROSTAMP_INPUTS/$KERNEL_TARBALL"
    have_input "$KERNEL_TARBALL" "$KERNEL_TARBALL_SHA256" ||
      die "$KERNEL_TARBALL inside $KERNEL_DEB does not have sha256 $KERNEL_TARBALL_SHA256"
    rm -f "$FROSTAMP_INPUTS/$KERNEL_DEB"
  fi
  if ! have_input "$EDK2_ORIG" "$EDK2_ORIG_SHA256" || ! have_input "$EDK2_DEBIAN" "$EDK2_DEBIAN_SHA256"; then
    # apt-get source also wants the .dsc, which some mirrors lack: only the two tarballs count.
    (cd "$FROSTAMP_INPUTS" && apt-get "${o[@]}" -qq source --download-only "$EDK2_PKG=$EDK2_VERSION") >/dev/null 2>&1 || true
    have_input "$EDK2_ORIG" "$EDK2_ORIG_SHA256" || snapshot_get "$EDK2_ORIG" "$EDK2_ORIG_SHA1" "$EDK2_ORIG_SHA256" || true
    have_input "$EDK2_DEBIAN" "$EDK2_DEBIAN_SHA256" || snapshot_get "$EDK2_DEBIAN" "$EDK2_DEBIAN_SHA1" "$EDK2_DEBIAN_SHA256" || true
    have_input "$EDK2_ORIG" "$EDK2_ORIG_SHA256" || die "cannot obtain $EDK2_ORIG with sha256 $EDK2_ORIG_SHA256"
    have_input "$EDK2_DEBIAN" "$EDK2_DEBIAN_SHA256" || die "cannot obtain $EDK2_DEBIAN with sha256 $EDK2_DEBIAN_SHA256"
    rm -f "$FROSTAMP_INPUTS"/edk2_*.dsc
  fi
  log "pinned inputs present and verified"
}

# ---------------------------------------------------------------- the node's source
# The files cargo reads to build frostamp-node: the working tree's tracked and untracked
# (not ignored) files under these paths.
NODE_SOURCE_PATHS=(Cargo.toml Cargo.lock rust-toolchain.toml build.rs .cargo src benches)
# node_source_files [DIR]: DIR defaults to the checkout; a snapshot (no .git) is listed whole.
node_source_files() {
  local root=${1:-$REPO_ROOT}
  # safe.directory: another user (scripts/check-reproducible.sh's second build) reads the checkout too.
  if [ -e "$root/.git" ] && git -c safe.directory='*' -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git -c safe.directory='*' ls-files -z --cached --others --exclude-standard -- "${NODE_SOURCE_PATHS[@]}" |
      xargs -0 -r -n1 sh -c '[ -f "$0" ] && printf "%s\n" "$0"' | LC_ALL=C sort -u)
  else
    (cd "$root" && for p in "${NODE_SOURCE_PATHS[@]}"; do [ -e "$p" ] && find "$p" -type f; done | LC_ALL=C sort -u)
  fi
}
# node_source_hash [DIR]: sha256 over (path, sha256 of contents) of every source file.
node_source_hash() {
  local root=${1:-$REPO_ROOT}
  (cd "$root" && node_source_files "$root" | while IFS= read -r f; do printf '%s  %s\n' "$(sha256_file "$f")" "$f"; done) | sha256_stdin
}
# node_source_snapshot DIR [FROM] [EXPECTED_HASH]: copy exactly the hashed files of FROM (default:
# the checkout) into DIR, a fresh source tree; with EXPECTED_HASH, fail if the copy differs
# (another engineer edited the checkout meanwhile): the cache key must describe what is built.
node_source_snapshot() {
  local dir=$1 from=${2:-$REPO_ROOT}
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$from" && node_source_files "$from" | tar -cf - --no-recursion -T -) | tar -xf - -C "$dir"
  if [ -n "${3:-}" ] && [ "$(node_source_hash "$dir")" != "$3" ]; then
    die "the node's source changed while the build started (hash differs from $3); run it again"
  fi
}

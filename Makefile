# frostamp: the two commands a newcomer needs are `make demo` and `make test`.
# Each installs what it needs (apt-get, cargo, pip from the package registries).

SHELL   := /bin/bash
CARGO   ?= cargo
VENV    := .venv
PY_DEPS := rfc3161-client==1.0.9 sev-snp-measure==0.0.13
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

.PHONY: all build demo test lint unit production-check bench profile stress soak fuzz deps system-deps interop-deps roughtime-deps clean

all: build

build:
	$(CARGO) build --locked --release --bins

# The Roughtime reference server (int08h roughenough): the local cluster's three time
# servers (`frostamp cluster up`) and the interop test. Installed once per machine.
ROUGHENOUGH_VERSION := 2.2.0
TOOLS_DIR           := $(HOME)/.cache/frostamp/tools
ROUGHENOUGH         := $(TOOLS_DIR)/bin/roughenough_server

# Targets that start local clusters (or run the tests that do) find the server here.
demo unit bench profile stress soak: export FROSTAMP_ROUGHENOUGH := $(ROUGHENOUGH)

roughtime-deps:
	@test -x $(ROUGHENOUGH) || { echo "installing: roughenough-server $(ROUGHENOUGH_VERSION) into $(TOOLS_DIR)"; \
	  $(CARGO) install roughenough-server --version $(ROUGHENOUGH_VERSION) --locked --root $(TOOLS_DIR); }

## make demo: a local five-process cluster with three local Roughtime servers runs the
## key ceremony; then a file (README.md by default) is stamped and verified.
DEMO_FILE ?= README.md
DEMO_DIR  := target/demo-cluster
demo: system-deps roughtime-deps
	$(CARGO) build --locked --release --features insecure-dev-attestation --bins
	-./target/release/frostamp cluster down --dir $(DEMO_DIR) 2>/dev/null
	rm -rf $(DEMO_DIR)
	./target/release/frostamp cluster up --dir $(DEMO_DIR)
	@echo
	@echo "--- stamping $(DEMO_FILE) over HTTPS; three nodes sign, each checks what it signs ---"
	./target/release/frostamp stamp $(DEMO_FILE) --cluster $(DEMO_DIR) --out $(DEMO_DIR)/$(notdir $(DEMO_FILE)).tsr
	@echo
	./target/release/frostamp cluster status --dir $(DEMO_DIR)
	@echo
	@echo "--- the same with openssl ts and curl; TLS verified against the cluster's root (it issued the nodes' TLS certificates) ---"
	openssl ts -query -data $(DEMO_FILE) -sha256 -cert -out $(DEMO_DIR)/curl.tsq
	curl -sS --fail --cacert $(DEMO_DIR)/root.pem -H 'Content-Type: application/timestamp-query' \
	  --data-binary @$(DEMO_DIR)/curl.tsq -o $(DEMO_DIR)/curl.tsr \
	  $$(sed -n 's/.*"url": "\([^"]*\)".*/\1/p' $(DEMO_DIR)/cluster.json | head -n 1)/
	@echo
	@echo "--- what OpenSSL sees in the response ---"
	openssl ts -reply -in $(DEMO_DIR)/curl.tsr -text
	./target/release/frostamp verify $(DEMO_DIR)/curl.tsr --data $(DEMO_FILE) --roots $(DEMO_DIR)/root.pem \
	  --time-servers $(DEMO_DIR)/time-servers.json
	./target/release/frostamp cluster down --dir $(DEMO_DIR)
	@echo
	@echo "Stamp your own files: frostamp cluster up --dir D; frostamp stamp FILE --cluster D; frostamp cluster down --dir D"

## make test: formatting, lints, every test (unit, real-data, interop, multi-process),
## the check that the production node holds no development attestation, the images, and
## the boot test (five QEMU VMs of the development image, see docs/boot.md).
test: deps lint unit production-check image-check measurements-check boot-test

production-check: image image-dev
	./scripts/check-production-node.sh

# The production feature set (what the image gets) and the development/test set.
DEV_FEATURES := insecure-dev-attestation,test-faults

lint:
	$(CARGO) fmt --all --check
	python3 scripts/module-graph.py
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --all-targets --features $(DEV_FEATURES) -- -D warnings

unit: roughtime-deps
	$(CARGO) test --locked --features $(DEV_FEATURES)

## make bench: in-process issuance vs raw FROST, a running local cluster over HTTPS,
## and recovery times (detection, repair, halt, re-ceremony) on the local cluster.
bench: roughtime-deps
	$(CARGO) bench --locked --bench issuance
	$(CARGO) build --locked --release --features insecure-dev-attestation --bins
	$(CARGO) bench --locked --features insecure-dev-attestation --bench cluster
	$(CARGO) bench --locked --features insecure-dev-attestation --bench recovery

## make profile: instructions per token, counted by valgrind's callgrind (the same on a
## busy or an idle machine; issue 15): one node as coordinator, as signer and with a TLS
## connection per request, the raw FROST bound, then the whole cluster with one client
## against 8 at once. Tables under target/callgrind*/; figures in docs/benchmarks.md.
PROFILE_TOKENS ?= 100
profile: roughtime-deps
	command -v valgrind >/dev/null || $(APT) install -y valgrind
	$(CARGO) build --locked --release --features insecure-dev-attestation --bins
	WARMUP=10 FROSTAMP_BIN_DIR=target/release scripts/callgrind-breakdown.sh $(PROFILE_TOKENS)
	FROSTAMP_BIN_DIR=target/release scripts/callgrind-concurrency.sh 600 8

## make stress: the cluster lifecycle (ceremony, kill, repair, two lost, halt,
## re-ceremony) STRESS_RUNS times on the local cluster (key epochs of STRESS_SUITE,
## secp256k1 or ed25519); every failure is reported with
## the nodes' phases, peers, rosters and refusals, and its logs kept under target/stress/.
STRESS_RUNS ?= 50
STRESS_SUITE ?= secp256k1
stress: roughtime-deps
	$(CARGO) build --locked --release --features insecure-dev-attestation --bins
	FROSTAMP_STRESS=1 FROSTAMP_RECOVERY_RUNS=$(STRESS_RUNS) FROSTAMP_CIPHERSUITE=$(STRESS_SUITE) $(CARGO) bench --locked --features insecure-dev-attestation --bench recovery

## make soak: the local cluster for SOAK_MINUTES at 80 % of the capacity measured at its
## start, with malformed and slow clients, a node killed and replaced every 5 minutes; per
## minute: tokens, errors by class, p50/p99, each node's RSS and fds (benches/soak.rs).
## Fails if a valid request fails outside a repair window or a node's RSS or fds grow by
## more than 10 %. Not part of `make test`; output in docs/benchmarks.md ("Soak").
SOAK_MINUTES ?= 30
soak: roughtime-deps
	$(CARGO) build --locked --release --features insecure-dev-attestation --bins
	FROSTAMP_SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) bench --locked --features insecure-dev-attestation --bench soak

## make fuzz: every fuzz target in turn, one process at nice 19, each to 10^7 executions
## or 30 CPU-minutes (fuzz/campaign.sh; FUZZ_RUNS, FUZZ_CPU_SECONDS, FUZZ_TARGETS override),
## minimising into the committed fuzz/corpus-min/; needs nightly and cargo-fuzz.
## Figures in docs/fuzzing.md; `make test` replays the corpora (tests/fuzz_corpora.rs).
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	fuzz/campaign.sh

deps: system-deps interop-deps roughtime-deps

# openssl (interop tests and the demo), python3 + venv (rfc3161-client interop),
# haproxy (tests/haproxy.rs runs deploy/haproxy.cfg in front of a local cluster),
# golang-go (tests/interop_go.rs: Go's standard library parses our tokens), curl and a JDK
# (tests/public_tls.rs: curl --cacert and Java's TLS client verify the nodes' certificates;
# tests/interop_java.rs: jarsigner -tsa and -verify), Bouncy Castle (tests/interop_java.rs:
# its TSP API checks the same token).
system-deps:
	@missing=""; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || missing="$$missing haproxy"; \
	command -v go >/dev/null || missing="$$missing golang-go"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v javac >/dev/null && command -v keytool >/dev/null && command -v jarsigner >/dev/null \
	  && command -v jar >/dev/null || missing="$$missing default-jdk-headless"; \
	test -f /usr/share/java/bcprov.jar && test -f /usr/share/java/bcpkix.jar \
	  && test -f /usr/share/java/bcutil.jar || missing="$$missing libbcprov-java libbcpkix-java"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(APT) update -qq && $(APT) install -y -qq $$missing; \
	fi

interop-deps: $(VENV)/.installed

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_DEPS)
	touch $@

clean:
	$(CARGO) clean
	rm -rf $(VENV) target/demo

# ---------------------------------------------------------------------------------------
# Boot image (issue 6): reproducible kernel + initramfs + AmdSev firmware.
# reproducible-build/ builds, image/ configures; see reproducible-build/README.md, image/README.md.
# Outputs: target/image/prod, target/image/dev; cache: ~/.cache/frostamp/<artifact>-<input hash>/.
# ---------------------------------------------------------------------------------------
.PHONY: image image-dev image-deps reproduce launch-command image-check

# Debian bookworm packages the image build uses (the toolchain is recorded in manifest.json).
IMAGE_PKGS := build-essential flex bison bc libelf-dev cpio nasm acpica-tools uuid-dev \
              python3 xz-utils curl ca-certificates util-linux debian-archive-keyring musl-tools
image-deps:
	@missing=""; for p in $(IMAGE_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; fi
	@rustup target list --installed | grep -qx x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl

## make image: the production image (frostamp-node without development attestation).
image: image-deps
	./reproducible-build/build-image.sh --variant prod --out target/image/prod

## make image-dev: the same image with the development-attestation node (boot tests only).
image-dev: image-deps
	./reproducible-build/build-image.sh --variant dev --out target/image/dev

## make reproduce: rebuild from scratch and compare with target/image/prod and measurements/.
reproduce: image-deps
	./scripts/image-reproduce.sh

## make launch-command: the QEMU (>= 9.1) SEV-SNP command line for the production image
## (VCPUS=, CPU=, MEM=, CONFIG=, PUBLIC_PORT=, PEER_PORT= override; see image/README.md).
launch-command: image
	@./scripts/image-launch-command.sh target/image/prod

## image-check (part of make test): contents of both images, and two independent builds
## of the production image byte for byte (verdict cached per artifact input hash).
image-check: image image-dev
	./scripts/image-check-contents.sh target/image/prod target/image/dev
	./scripts/check-reproducible.sh
# (end of the boot image section)

# ---------------------------------------------------------------------------------------
# Published launch measurements (issue 6): measurements/<version>.json (production image)
# and measurements/<version>-dev.json (development image, NOT for production), computed by
# `frostamp measure` (sev crate) and cross-checked with sev-snp-measure. See docs/attestation.md.
# ---------------------------------------------------------------------------------------
.PHONY: measurements measurements-check

## make measurements: recompute measurements/ from a fresh `make image` / `make image-dev`.
measurements: image image-dev
	MEASURE_FEATURES=$(DEV_FEATURES) ./scripts/measurements.sh generate

## measurements-check (part of make test): the committed measurements/ equal what the
## rebuilt images give, and sev-snp-measure agrees on every published digest.
measurements-check: image image-dev interop-deps
	MEASURE_FEATURES=$(DEV_FEATURES) ./scripts/measurements.sh check

# ---------------------------------------------------------------------------------------
# Boot test (issue 6): the development image boots under QEMU TCG, frostamp-node runs as
# PID 1 in five VMs, the operator CLI runs the ceremony, a token verifies. See docs/boot.md.
# ---------------------------------------------------------------------------------------
.PHONY: boot-test qemu-deps

qemu-deps:
	@command -v qemu-system-x86_64 >/dev/null || { echo "installing: qemu-system-x86"; \
	  $(APT) update -qq && $(APT) install -y -qq --no-install-recommends qemu-system-x86; }

## make boot-test: five VMs of target/image/dev (FROSTAMP_BOOT_VMS=k boots k, the rest run
## as processes of the same binary); logs and timings in target/boot-test/. Then the
## production image without SEV-SNP must refuse to start and power off.
boot-test: qemu-deps image-dev image
	$(CARGO) test --locked --features $(DEV_FEATURES) --test boot -- --ignored --nocapture --test-threads=1

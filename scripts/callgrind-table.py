#!/usr/bin/env python3
"""Instructions per token by category from one callgrind dump (issue 15).

usage: callgrind-table.py --tokens N [--role NAME] [--top K] CALLGRIND_FILE...

Self cost of every function (as `callgrind_annotate --inclusive=no` would give it), assigned to a category
by the crate (or C library) the function belongs to, divided by the tokens of the run.
With several files (e.g. one per node) their costs are added up. Inlined code counts where it was inlined. Calls to a few marker functions (from the
file's call records) are printed too, per token, to check what the run did. callgrind
counts user-space instructions only: system calls and the kernel's socket and
scheduling work are not in these figures.
"""

import argparse
import re
import subprocess
from collections import defaultdict

# (category, regex on the function's crate path or symbol), first match wins.
CATEGORIES = [
    ("allocation (malloc/free/realloc)", r"^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free\w*|_int_realloc|malloc_consolidate|unlink_chunk\w*|tcache\w*|__libc_malloc|__libc_free|__libc_realloc|__libc_calloc|posix_memalign|_mid_memalign|__rust_alloc|__rust_dealloc|__rust_realloc|__rust_alloc_zeroed|__rdl_\w+|alloc::alloc::|alloc::raw_vec::|<alloc::raw_vec::|alloc::sync::Arc<.*>::drop_slow|sysmalloc|systrim|arena_get2|__default_morecore|alloc_perturb|checked_request2size)"),
    ("memcpy/memset/memcmp", r"^(__)?(mem(cpy|move|set|cmp|chr)|bcmp|strlen|__memcpy\w*|__memmove\w*|__memset\w*|__memcmp\w*|__strlen\w*|__memchr\w*|__bcmp\w*|__nss_database_lookup)"),
    ("FROST arithmetic (k256, frost)", r"^(k256|elliptic_curve|frost_core|frost_secp256k1|primeorder|crypto_bigint|ff|group|subtle)::"),
    ("time evidence (Ed25519 verify, Roughtime)", r"^(ring_core_\w*(x25519|ed25519|25519)\w*|ring::ec::curve25519|ring::signature|fiat_25519\w*|x25519\w*|ge_\w+|fe_\w+|slide|sc_\w+|frostamp::time::|roughenough\w*)$"),
    ("hashing (SHA-2)", r"^(sha2|sha1|digest|hmac|ring_core_\w*sha\w*|ring::digest|sha\d+_block\w*|block_buffer)"),
    ("TLS (rustls, ring AEAD)", r"^(rustls|tokio_rustls|rustls_pki_types|webpki|ring::|ring_core_\w*|aes_\w*|gcm_\w*|ChaCha20\w*|chacha20\w*|poly1305\w*|GFp_\w*|bn_\w*|aesni_\w*|_aesni\w*|ecp_nistz256\w*|p256_\w*|LIMBS_\w*|OPENSSL_\w*)"),
    ("HTTP (hyper)", r"^(hyper|hyper_util|http|httparse|http_body|http_body_util|h2)::"),
    ("peer-message encoding (serde_json, hex, frames)", r"^(serde_json|serde|serdect|hex|base16ct|base64|frostamp::node::messages|frostamp::serde_hex)(::|$)"),
    ("DER / CMS / X.509", r"^(der|x509_cert|cms|spki|const_oid|pkcs8|sec1)::"),
    ("TSA logic (frostamp::tsp, verify)", r"^frostamp::(tsp|verify|certs)::"),
    ("async runtime (tokio, futures)", r"^(tokio|mio|futures\w*|parking_lot\w*|crossbeam\w*|std::sync|std::thread|std::sys::\w+::(thread|futex|sync|pal::unix::(thread|futex))|pthread_\w+|__pthread\w*|__lll_\w+|lll_\w+|___pthread\w*|__futex\w*|futex\w*|epoll_\w+|__GI_epoll\w*|sched_yield|std::sys::sync|slab)"),
    ("logging (tracing)", r"^(tracing|tracing_core|tracing_subscriber|sharded_slab|thread_local|log)::"),
    ("frostamp (other node code)", r"^frostamp::"),
    ("Rust std/core (fmt, collections, ...)", r"^(core|alloc|std|hashbrown|smallvec|bytes|indexmap|rand\w*|getrandom|zeroize|uuid|itoa|ryu|memchr|once_cell|foldhash|ahash)::"),
    ("libc (syscall wrappers, other)", r"^(__\w+|_\w+|\w+@@?GLIBC\w*|clock_gettime|__clock_gettime\w*|read|write|send\w*|recv\w*|getrandom|__GI_\w+|__libc_\w+|__vdso\w*|_dl_\w+|__tls_get_addr|__errno_location)$"),
]
COMPILED = [(name, re.compile(rx)) for name, rx in CATEGORIES]
OTHER = "other"

# Functions whose call counts say what a run did.
# (Whether a function is a call or inlined depends on the build: of the two names for
# the shares and for the aggregate, one is usually there.)
MARKERS = [
    ("frost round2::sign (signature shares)", r"^frost_secp256k1::round2::sign$"),
    ("signature shares of co-signers (frostamp)", r"^frostamp::threshold::signer::Signer<C,S>::sign_with_nonces$"),
    ("frost aggregate", r"^frost_core::aggregate_custom$"),
    ("aggregate with its checks (frostamp)", r"^frostamp::threshold::coordinator::aggregate_checked$"),
    ("k·P, variable base (k256 lincomb; 2 per commitment)", r"^k256::arithmetic::mul::lincomb$"),
    ("commitments made and encoded", r"^frostamp::threshold::signer::EncodedCommitments<S>::encode$"),
    ("Ed25519 verifications (ring)", r"^ring_core_\w+_x25519_ge_double_scalarmult_vartime$"),
    ("point serialization (k256 inversion)", r"^<frost_secp256k1::Secp256K1Group as frost_core::traits::Group>::serialize$"),
    ("point deserialization (k256 square root)", r"^<frost_secp256k1::Secp256K1Group as frost_core::traits::Group>::deserialize$"),
    ("malloc", r"^malloc$"),
]


def crate_path(symbol):
    """The path a function is assigned by: for `<A as B>::f`, A's path unless A is a
    std/core/alloc type and B's crate is more specific; else the symbol itself."""
    s = symbol.strip()
    m = re.match(r"^<(.+?) as (.+?)>::", s)
    if m:
        self_ty, trait = m.group(1).lstrip("&*mut const "), m.group(2)
        self_ty = self_ty.lstrip("[(").strip()
        if re.match(r"^(core|alloc|std)::", self_ty) and not re.match(r"^(core|alloc|std)::", trait):
            return trait
        return self_ty
    if s.startswith("<"):
        return s[1:].lstrip("&*").strip()
    return s


def category(symbol):
    path = crate_path(symbol)
    for name, rx in COMPILED:
        if rx.search(path) or rx.search(symbol):
            return name
    return OTHER


def self_costs(path, events_out=None):
    """Self cost (instructions, Ir) per function, read from the raw file: every cost line
    counts for the current `fn=`, except the line after a `calls=` record (the call's
    inclusive cost). (callgrind_annotate 3.19 counts the inclusive cost of frames still
    active at a dump, `calls=0`, as self cost of the thread-start functions; reading the
    file avoids it.) With `events_out` (a dict), the totals of every event of the file
    (with --cache-sim / --branch-sim: cache misses, branches) are added into it."""
    names = {}
    costs = defaultdict(int)
    fn = None
    skip_next = False
    positions = 1
    events = ["Ir"]
    ref = re.compile(r"^fn=\((\d+)\)(?: (.*))?$")
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
                continue
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            if line.startswith("fn="):
                m = ref.match(line)
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    fn = names.get(m.group(1), "?")
                else:
                    fn = line[3:].strip()
                continue
            if line.startswith("cfn="):
                m = re.match(r"^cfn=\((\d+)\)(?: (.*))?$", line)
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
                continue
            if line.startswith("calls="):
                skip_next = True
                continue
            if line[0].isdigit() or line[0] in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                # Counts follow the positions, in the order of `events:`; trailing
                # zeros are left out.
                counts = line.split()[positions:]
                if counts and fn is not None:
                    costs[fn] += int(counts[0]) if events[0] == "Ir" else 0
                    if events_out is not None:
                        for name, v in zip(events, counts):
                            events_out[name] = events_out.get(name, 0) + int(v)
    return [(c, name) for name, c in costs.items()]


def call_counts(path):
    """Calls per callee name from the raw file's call records."""
    names = {}
    counts = defaultdict(int)
    inclusive = defaultdict(int)
    callee = None
    after_call = False
    positions = 1
    ref = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
            elif line.startswith(("fn=", "cfn=")):
                m = ref.match(line.rstrip("\n"))
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    name = names.get(m.group(1), "")
                else:
                    name = line.split("=", 1)[1].strip()
                if line.startswith("cfn="):
                    callee = name
            elif line.startswith("calls=") and callee is not None:
                counts[callee] += int(line.split("=", 1)[1].split()[0])
                after_call = True
            elif after_call:
                after_call = False
                parts = line.split()
                if len(parts) > positions and callee is not None:
                    inclusive[callee] += int(parts[positions])  # Ir, the first event
    return counts, inclusive


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--role", default="")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("files", nargs="+", metavar="file")
    a = ap.parse_args()
    summed = defaultdict(int)
    events = {}
    for path in a.files:
        for c, sym in self_costs(path, events):
            summed[sym] += c
    costs = [(c, sym) for sym, c in summed.items()]
    total = sum(c for c, _ in costs)
    by_cat = defaultdict(int)
    for c, sym in costs:
        by_cat[category(sym)] += c
    n = a.tokens
    if a.role == "raw":
        who = "raw FROST in process"
    elif len(a.files) > 1:
        who = f"{len(a.files)} processes, {a.role}"
    else:
        who = f"node 2 as {a.role}"
    print(f"callgrind, {who}: {n} tokens, {total:,} instructions "
          f"= {total / n / 1e6:.2f} M per token (user space only)")
    print(f"{'category':<50} {'M instr/token':>14} {'share':>7}")
    for name in [c for c, _ in CATEGORIES] + [OTHER]:
        if by_cat.get(name):
            v = by_cat[name]
            print(f"{name:<50} {v / n / 1e6:>14.3f} {100 * v / total:>6.1f}%")
    print(f"{'total':<50} {total / n / 1e6:>14.3f} {100.0:>6.1f}%")
    if len(events) > 1:
        # callgrind --cache-sim=yes --branch-sim=yes: a simulated cache of its own (per
        # process, no other process evicting lines), so a lower bound of what runs here.
        ir = events.get("Ir", 0) or 1
        print()
        print("simulated per token (callgrind --cache-sim/--branch-sim), and per 1000 instructions:")
        for name in events:
            if name != "Ir":
                print(f"  {name:<6} {events[name] / n:>14,.0f} {1000 * events[name] / ir:>10.2f}")
    print()
    print(f"top {a.top} functions (self), M instr/token:")
    for c, sym in sorted(costs, reverse=True)[: a.top]:
        print(f"  {c / n / 1e6:>8.3f}  {category(sym)[:24]:<24}  {sym[:110]}")
    counts, inclusive = defaultdict(int), defaultdict(int)
    for path in a.files:
        c, i = call_counts(path)
        for k, v in c.items():
            counts[k] += v
        for k, v in i.items():
            inclusive[k] += v
    print()
    print("calls per token and their inclusive cost (functions not inlined; recursion")
    print("and calls from frames active at the dump make these approximate):")
    print(f"  {'':<52} {'calls':>8} {'M instr':>8}")
    for label, rx in MARKERS:
        r = re.compile(rx)
        hit = [name for name in counts if r.search(name)]
        k = sum(counts[name] for name in hit)
        inc = sum(inclusive[name] for name in hit)
        print(f"  {label:<52} {k / n:>8.2f} {inc / n / 1e6:>8.3f}")


if __name__ == "__main__":
    main()

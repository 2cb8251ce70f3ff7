#!/usr/bin/env python3
"""The crate's module import graph, checked (issue 16; `make lint` runs it).

Every file under src/ (except src/bin/) is one module. An edge A -> B means A names
an item of B: in a `use` (groups expanded), in a `crate::`/`super::`/`self::` path,
or, inside a parent module, in a path that starts with a child module's name. A
parent's `pub use child::...` re-export is its interface, not a dependency, and
so is `mod child;`. Test modules (`#[cfg(test)] mod ... {`) and comments are
ignored. Macros (`crate::for_suite!`) name the crate root, which imports nothing.

Two rules, either one failing the check:
1. no cycle among modules (Tarjan's strongly connected components);
2. the top-level modules import strictly downward through LAYERS below (a module
   may import only from lower layers, never from its own layer or above).

Usage: scripts/module-graph.py [--print] [SRC_DIR]. With --print it shows every
edge; it always shows the top-level graph.
"""
import os
import re
import sys
from collections import defaultdict

# Lowest first. Keep in sync with src/lib.rs's Layout and docs/architecture.md.
LAYERS = [
    ["clock", "entropy", "oid", "serde_hex", "x509"],  # encodings, X.509, inputs
    ["tsp", "attestation", "time", "measure"],  # RFC 3161, SEV-SNP, Roughtime, digests
    ["threshold"],  # FROST keys, signer, coordinator
    ["certs", "verify"],  # certificate profiles, dev CA; relying-party verification
    ["api"],  # every wire type
    ["net"],  # TLS identity and configurations, HTTPS client
    ["node", "ceremony", "local"],  # the node; the operator's ceremony; in-process TSA
    ["cli", "pid1"],  # the edges
]


def module_files(src):
    files = {}
    for root, _, names in os.walk(src):
        for f in names:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[0] == "bin":
                continue
            if parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            files[tuple(parts)] = path
    return files


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    m = re.search(r"#\[cfg\(test\)\]\s*(#\[[^\]]*\]\s*)*mod \w+ \{", text)
    return text[: m.start()] if m else text


def expand_use(tree):
    tree = re.sub(r"\s+", "", tree)
    out = []

    def rec(prefix, s):
        depth, cur, items = 0, "", []
        for ch in s:
            depth += ch == "{"
            depth -= ch == "}"
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            items.append(cur)
        for it in items:
            if "{" in it:
                head, rest = it.split("{", 1)
                rec(prefix + [x for x in head.split("::") if x], rest[:-1])
            else:
                out.append(prefix + [x for x in it.split(" as ")[0].split("::") if x])

    rec([], tree)
    return out


def resolve(mods, cur, path):
    if not path:
        return None
    if path[0] == "crate":
        base, path = (), path[1:]
    elif path[0] == "super":
        base = cur
        while path and path[0] == "super":
            base, path = base[:-1], path[1:]
    elif path[0] == "self":
        base, path = cur, path[1:]
    else:
        return None
    best = base
    for i in range(1, len(path) + 1):
        cand = base + tuple(path[:i])
        if cand not in mods:
            break
        best = cand
    return best


def graph(src):
    files = module_files(src)
    mods = set(files)
    edges = defaultdict(set)
    for m, f in files.items():
        with open(f, encoding="utf-8") as fh:
            text = strip(fh.read())
        paths = []
        for u in re.finditer(r"\b(pub(\([^)]*\))?\s+)?use\s+([^;]+);", text):
            for p in expand_use(u.group(3)):
                paths.append((p, bool(u.group(1))))
        for u in re.finditer(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
            paths.append((u.group(1).split("::"), False))
        for c in (c[-1] for c in mods if len(c) == len(m) + 1 and c[: len(m)] == m):
            if re.search(r"(?<![:\w])" + c + r"::[A-Za-z_]", text):
                paths.append((["self", c], False))
        for p, reexport in paths:
            t = resolve(mods, m, p)
            if t is None or t == m or t == ():
                continue
            if t[: len(m)] == m and reexport:
                continue
            edges[m].add(t)
    return mods, edges


def cycles(mods, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(100000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(mods):
        if v not in index:
            strong(v)
    return out


def name(m):
    return "::".join(m) or "crate"


def main():
    args = [a for a in sys.argv[1:] if a != "--print"]
    src = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "src")
    mods, edges = graph(src)
    if "--print" in sys.argv:
        for m in sorted(edges):
            print(f"{name(m)} -> {', '.join(sorted(name(t) for t in edges[m]))}")
        print()
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms}
    top = defaultdict(set)
    for m, ts in edges.items():
        for t in ts:
            if m[0] != t[0]:
                top[m[0]].add(t[0])
    failures = []
    for m in sorted({m[0] for m in mods if m}):
        if m not in layer:
            failures.append(f"top-level module {m} is in no layer of scripts/module-graph.py")
    print("layers (lowest first) and what each top-level module imports:")
    for i, ms in enumerate(LAYERS):
        for m in ms:
            print(f"  {i} {m:12} -> {', '.join(sorted(top.get(m, ()))) or '-'}")
    for a in sorted(top):
        for b in sorted(top[a]):
            if a in layer and b in layer and layer[b] >= layer[a]:
                why = [f"{name(x)} -> {name(y)}" for x in sorted(edges) if x[0] == a
                       for y in sorted(edges[x]) if y[0] == b]
                failures.append(f"{a} (layer {layer[a]}) imports {b} (layer {layer[b]}): "
                                + "; ".join(why))
    for comp in cycles(mods, edges):
        failures.append("cycle: " + " ".join(sorted(name(x) for x in comp)))
    n_edges = sum(len(v) for v in edges.values())
    print(f"{len(mods)} modules, {n_edges} edges")
    if failures:
        for f in failures:
            print("FAIL:", f)
        return 1
    print("no cycle; every top-level import goes down a layer")
    return 0


if __name__ == "__main__":
    sys.exit(main())

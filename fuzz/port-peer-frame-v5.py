#!/usr/bin/env python3
"""Port fuzz/seeds/peer_frame/ and fuzz/corpus-min/peer_frame/ from protocol version 4
to version 5 (issue 14: a ciphersuite per key epoch).

Version 5 differs from 4 in (src/node/messages.rs):
- the binary per-token messages `SignCommitted`, `SignRound2` and `SignShare` carry a
  suite byte (1 = secp256k1, 2 = Ed25519) right after the 8-byte request id;
- the JSON messages tag their suite-specific values: `dkg_round1`/`dkg_round2`
  `package`, `sign_csr` `commitments` and `repair_sigma` `public` become
  {"secp256k1": <value>}.
Every version-4 input was secp256k1, so it is carried over as that: the version byte
becomes 5, a suite byte 1 is inserted into the three binary messages, and the JSON of a
control message that parses is re-tagged (other JSON bytes are kept as they were, so
inputs that reached the parser's error paths still do). Files in corpus-min are named by
their SHA-1, as libFuzzer names them. A mechanical port, not a new campaign.
usage: fuzz/port-peer-frame-v5.py   (rewrites both directories in place)
"""

import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OLD, NEW, TAG_JSON = 4, 5, 0
SUITE_SECP256K1 = 1
WITH_SUITE = {2, 3, 4}  # SignCommitted, SignRound2, SignShare
WRAP = {"dkg_round1": "package", "dkg_round2": "package", "sign_csr": "commitments",
        "repair_sigma": "public"}


def port(data):
    if data[:1] != bytes([OLD]):
        return data  # not a version-4 frame: refused before and after
    if len(data) < 2:
        return bytes([NEW]) + data[1:]
    tag = data[1]
    body = data[2:]
    if tag in WITH_SUITE and len(body) >= 8:
        return bytes([NEW, tag]) + body[:8] + bytes([SUITE_SECP256K1]) + body[8:]
    if tag == TAG_JSON:
        try:
            msg = json.loads(body)
        except ValueError:
            msg = None
        if isinstance(msg, dict) and msg.get("type") in WRAP and WRAP[msg["type"]] in msg:
            key = WRAP[msg["type"]]
            msg[key] = {"secp256k1": msg[key]}
            body = json.dumps(msg, separators=(",", ":")).encode()
    return bytes([NEW, tag]) + body


def main():
    seeds = os.path.join(HERE, "seeds", "peer_frame")
    for name in sorted(os.listdir(seeds)):
        path = os.path.join(seeds, name)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(port(data))
    corpus = os.path.join(HERE, "corpus-min", "peer_frame")
    new = {}
    for name in sorted(os.listdir(corpus)):
        with open(os.path.join(corpus, name), "rb") as f:
            data = f.read()
        if data[:1] == bytes([NEW]):
            sys.exit(f"{name} already starts with version {NEW}: already ported?")
        out = port(data)
        new[hashlib.sha1(out).hexdigest()] = out
    for name in os.listdir(corpus):
        os.remove(os.path.join(corpus, name))
    for name, out in new.items():
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(out)
    print(f"{len(new)} inputs written to {corpus}")


if __name__ == "__main__":
    main()

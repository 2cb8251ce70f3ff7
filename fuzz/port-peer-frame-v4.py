#!/usr/bin/env python3
"""Port fuzz/corpus-min/peer_frame/ from protocol version 3 to version 4 (issue 15).

Version 3 frames were a JSON envelope {"v":3,"msg":{...}}; version 4 payloads are a
version byte (4) and a tag byte, then JSON (tag 0) for the control messages or a binary
body for the four per-token messages (src/node/messages.rs). Each committed input is
carried over with what it exercised:

- an envelope of a control message: [4, 0] + the message's JSON text, byte for byte as
  it stood inside the envelope (odd whitespace and escapes kept);
- an envelope of a per-token message whose fields are valid: its binary encoding;
- anything else (inputs that reached the JSON parser's error paths): [4, 0] + the input.

Files are named by their SHA-1, as libFuzzer names them. This is a mechanical port, not
a new campaign: `fuzz/campaign.sh peer_frame` (cargo-fuzz, nightly) re-minimises it.
The committed seeds (seeds/peer_frame/) are ported the same way; the result is what
`write_seeds.rs peer_frame` writes for them.
usage: fuzz/port-peer-frame-v4.py   (from anywhere; rewrites both directories in place)
"""

import hashlib
import json
import os
import re
import struct
import sys

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-min", "peer_frame")
VERSION, TAG_JSON = 4, 0
TAGS = {"sign_commit": 1, "sign_committed": 2, "sign_round2": 3, "sign_share": 4}
ENVELOPE = re.compile(rb'^\s*\{\s*"v"\s*:\s*3\s*,\s*"msg"\s*:(.*)\}\s*$', re.S)


def commitment(c):
    b = bytes.fromhex(c["hiding"]) + bytes.fromhex(c["binding"])
    if len(b) != 66:
        raise ValueError("commitment length")
    return b


def lp(b):
    return struct.pack(">I", len(b)) + b


def binary(msg):
    t = msg["type"]
    out = bytes([VERSION, TAGS[t]]) + struct.pack(">Q", msg["req"])
    if t == "sign_commit":
        return out + struct.pack(">H", msg["count"])
    if t == "sign_committed":
        cs = msg["commitments"]
        return out + struct.pack(">H", len(cs)) + b"".join(commitment(c) for c in cs)
    if t == "sign_round2":
        p = msg["proposal"]
        serial = bytes(p["serial"])
        if len(serial) != 16:
            raise ValueError("serial length")
        out += lp(bytes.fromhex(p["request_der"])) + struct.pack(">Q", p["gen_time_unix_millis"])
        out += serial + lp(bytes.fromhex(p["cert_sha256"])) + lp(bytes.fromhex(p["time_evidence"]))
        cs = msg["commitments"]
        return out + struct.pack(">H", len(cs)) + b"".join(
            struct.pack(">H", i) + commitment(c) for i, c in cs)
    share = msg["share"]
    share = bytes.fromhex(share["share"] if isinstance(share, dict) else share)
    if len(share) != 32:
        raise ValueError("share length")
    return out + share


def port(data):
    m = ENVELOPE.match(data)
    if m:
        inner = m.group(1).rstrip()
        try:
            msg = json.loads(inner)
        except ValueError:
            msg = None
        if isinstance(msg, dict) and msg.get("type") in TAGS:
            try:
                return binary(msg)
            except (KeyError, ValueError, TypeError, struct.error):
                pass
        return bytes([VERSION, TAG_JSON]) + inner
    return bytes([VERSION, TAG_JSON]) + data


def port_seeds():
    """seeds/peer_frame/NAME.json: the same bytes write_seeds.rs now writes (NAME.bin for
    the binary messages)."""
    seeds = os.path.join(os.path.dirname(DIR), "..", "seeds", "peer_frame")
    for name in sorted(os.listdir(seeds)):
        path = os.path.join(seeds, name)
        with open(path, "rb") as f:
            data = f.read()
        if data[:1] == bytes([VERSION]):
            continue
        out = port(data)
        os.remove(path)
        stem = name.rsplit(".", 1)[0]
        ext = "json" if out[1] == TAG_JSON else "bin"
        with open(os.path.join(seeds, f"{stem}.{ext}"), "wb") as f:
            f.write(out)


def main():
    port_seeds()
    if not os.path.isdir(DIR):
        sys.exit(f"{DIR}: not found")
    new = {}
    for name in sorted(os.listdir(DIR)):
        with open(os.path.join(DIR, name), "rb") as f:
            data = f.read()
        if data[:1] == bytes([VERSION]):
            sys.exit(f"{name} already starts with version {VERSION}: already ported?")
        out = port(data)
        new[hashlib.sha1(out).hexdigest()] = out
    for name in os.listdir(DIR):
        os.remove(os.path.join(DIR, name))
    for name, out in new.items():
        with open(os.path.join(DIR, name), "wb") as f:
            f.write(out)
    print(f"{len(new)} inputs written to {DIR}")


if __name__ == "__main__":
    main()

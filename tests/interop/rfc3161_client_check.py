"""Interop peer for tests/interop_python.rs: trailofbits' rfc3161-client (PyPI).

  request DATA OUT HASH(sha256|sha512) NONCE(0|1) CERTREQ(0|1)  -> writes a TimeStampReq, prints {"nonce": int|null}
  parse RESP                                                    -> prints the TSTInfo fields as JSON
  verify RESP DATA ROOT_PEM                                     -> rfc3161-client's own verifier; prints
                                                                   {"verified": bool, "error": str|null}
  fetch URL DATA [CAFILE]                                       -> POSTs a request for DATA to URL (HTTPS,
                                                                   Content-Type application/timestamp-query),
                                                                   parses the reply, prints its fields as JSON

TLS: verified by Python's default context (certificate chain and host name), trusting
CAFILE (the cluster's root: the CA issued each node's public TLS certificate) or, without
it, the system's roots only.
"""
import ssl
import urllib.request
import json
import sys

import rfc3161_client as r


def main() -> int:
    mode = sys.argv[1]
    if mode == "request":
        data, out, hash_name, nonce, cert_req = sys.argv[2:7]
        alg = {"sha256": r.HashAlgorithm.SHA256, "sha512": r.HashAlgorithm.SHA512}[hash_name]
        with open(data, "rb") as f:
            payload = f.read()
        req = (
            r.TimestampRequestBuilder()
            .data(payload)
            .hash_algorithm(alg)
            .nonce(nonce=nonce == "1")
            .cert_request(cert_request=cert_req == "1")
            .build()
        )
        with open(out, "wb") as f:
            f.write(req.as_bytes())
        print(json.dumps({"nonce": None if req.nonce is None else str(req.nonce)}))
        return 0
    if mode == "verify":
        from cryptography import x509

        with open(sys.argv[2], "rb") as f:
            resp = r.decode_timestamp_response(f.read())
        with open(sys.argv[3], "rb") as f:
            data = f.read()
        with open(sys.argv[4], "rb") as f:
            root = x509.load_pem_x509_certificate(f.read())
        try:
            r.VerifierBuilder().add_root_certificate(root).build().verify_message(resp, data)
            print(json.dumps({"verified": True, "error": None}))
        except Exception as e:  # the verifier's errors are what is measured
            print(json.dumps({"verified": False, "error": f"{type(e).__name__}: {e}"}))
        return 0
    if mode in ("parse", "fetch"):
        if mode == "parse":
            with open(sys.argv[2], "rb") as f:
                raw = f.read()
        else:
            url, data = sys.argv[2], sys.argv[3]
            cafile = sys.argv[4] if len(sys.argv) > 4 else None
            with open(data, "rb") as f:
                payload = f.read()
            req = r.TimestampRequestBuilder().data(payload).nonce(nonce=True).cert_request(cert_request=True).build()
            http = urllib.request.Request(
                url, data=req.as_bytes(), headers={"Content-Type": "application/timestamp-query"}, method="POST"
            )
            ctx = ssl.create_default_context(cafile=cafile)
            with urllib.request.urlopen(http, context=ctx, timeout=30) as resp_http:
                if resp_http.headers.get("Content-Type") != "application/timestamp-reply":
                    print("wrong content type", resp_http.headers.get("Content-Type"), file=sys.stderr)
                    return 1
                raw = resp_http.read()
        resp = r.decode_timestamp_response(raw)
        t = resp.tst_info
        print(
            json.dumps(
                {
                    "status": int(resp.status),
                    "version": t.version,
                    "policy": t.policy.dotted_string,
                    "hash_oid": t.message_imprint.hash_algorithm.dotted_string,
                    "imprint": t.message_imprint.message.hex(),
                    "serial": str(t.serial_number),
                    "gen_time_unix": int(t.gen_time.timestamp()),
                    "nonce": None if t.nonce is None else str(t.nonce),
                    "ordering": t.ordering,
                    "signed_data_certs": len(resp.signed_data.certificates),
                }
            )
        )
        return 0
    print(f"unknown mode {mode}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

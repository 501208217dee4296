#!/usr/bin/env python3
"""Test helper for seam-ca: builds a JWKS and mints JWTs with the openssl CLI (standard library only).

  ca_jwt.py jwks OUT PUBKEY.pem:KID [PUBKEY.pem:KID...]
  ca_jwt.py mint --sign rsa:KEY.pem|ec:KEY.pem|none|hmac:FILE --header JSON --claims JSON
"""
import base64
import hmac
import hashlib
import json
import subprocess
import sys


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_of_pubkey(path):
    return subprocess.run(["openssl", "pkey", "-pubin", "-in", path, "-outform", "DER"],
                          check=True, capture_output=True).stdout


def read_der_len(buf, i):
    n = buf[i]
    i += 1
    if n < 0x80:
        return n, i
    k = n & 0x7F
    return int.from_bytes(buf[i:i + k], "big"), i + k


def der_integers(buf):
    """The INTEGERs of a DER SEQUENCE, in order."""
    assert buf[0] == 0x30
    _, i = read_der_len(buf, 1)
    out = []
    while i < len(buf):
        assert buf[i] == 0x02
        n, i = read_der_len(buf, i + 1)
        out.append(int.from_bytes(buf[i:i + n], "big"))
        i += n
    return out


def jwk_of(path, kid):
    text = subprocess.run(["openssl", "pkey", "-pubin", "-in", path, "-noout", "-text"],
                          check=True, capture_output=True, text=True).stdout
    der = der_of_pubkey(path)
    if "Modulus" in text or "RSA" in text.split("\n")[0]:
        mod = subprocess.run(["openssl", "rsa", "-pubin", "-in", path, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        n = bytes.fromhex(mod)
        exp = 65537
        for line in text.splitlines():
            if line.startswith("Exponent:"):
                exp = int(line.split()[1])
        e = exp.to_bytes((exp.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64url(n), "e": b64url(e)}
    point = der[-65:]
    assert point[0] == 4
    return {"kty": "EC", "kid": kid, "crv": "P-256", "use": "sig", "x": b64url(point[1:33]), "y": b64url(point[33:])}


def sign(spec, signing_input):
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return b""
    if kind == "hmac":
        with open(arg, "rb") as f:
            return hmac.new(f.read(), signing_input, hashlib.sha256).digest()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", arg], input=signing_input,
                         check=True, capture_output=True).stdout
    if kind == "ec":
        r, s = der_integers(sig)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return sig


def main(argv):
    if len(argv) >= 3 and argv[1] == "jwks":
        keys = []
        for arg in argv[3:]:
            path, _, kid = arg.rpartition(":")
            keys.append(jwk_of(path, kid))
        with open(argv[2], "w") as f:
            json.dump({"keys": keys}, f)
        return 0
    if len(argv) >= 2 and argv[1] == "mint":
        opts = dict(zip(argv[2::2], argv[3::2]))
        header = opts["--header"].encode()
        claims = opts["--claims"].encode()
        signing_input = (b64url(header) + "." + b64url(claims)).encode()
        print(signing_input.decode() + "." + b64url(sign(opts["--sign"], signing_input)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

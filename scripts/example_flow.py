#!/usr/bin/env python3
"""Walks the whole QR login flow against a running `qrlogin serve`, printing every request
and response. It is the README's worked example, and CI runs it as an end-to-end check.

Usage: example_flow.py [BASE_URL]   (default http://127.0.0.1:8080)
Needs the `cryptography` package (P-256 keys for the DPoP proofs).
"""
import base64
import hashlib
import json
import secrets
import sys
import time
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080").rstrip("/")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Device:
    """A device key that signs RFC 9449 proofs."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC",
                    "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, path: str, token: str | None = None) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"htm": method, "htu": BASE + path, "iat": int(time.time()), "jti": secrets.token_urlsafe(16)}
        if token:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def call(step: str, method: str, path: str, body=None, device: Device | None = None,
         token: str | None = None, scheme: str = "DPoP", expect: int = 200):
    headers = {"Content-Type": "application/json"}
    if device:
        headers["DPoP"] = device.proof(method, path.split("?")[0], token)
    if token:
        headers["Authorization"] = f"{scheme} {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    print(f"\n### {step}\n{method} {path}")
    if body is not None:
        print(json.dumps(body, indent=2))
    print(f"-> {status}")
    parsed = json.loads(text) if text else None
    if parsed is not None:
        print(json.dumps(parsed, indent=2))
    if status != expect:
        sys.exit(f"FAILED: {step}: expected {expect}, got {status}")
    return parsed


def main():
    phone, pc = Device(), Device()
    user = "alice" + secrets.token_hex(3)
    call("1. Register (phone app)", "POST", "/api/v1/accounts",
         {"username": user, "password": "correct horse battery", "displayName": "Alice"}, expect=201)
    session = call("2. Sign in on the phone; the token is bound to the phone's key", "POST", "/api/v1/auth/password",
                   {"username": user, "password": "correct horse battery", "device": {"type": "ios", "name": "Alice's iPhone"}},
                   device=phone, expect=201)
    phone_token = session["accessToken"]
    login = call("3. The PC asks for a QR login, proving its own key", "POST", "/api/v1/qr",
                 {"device": {"type": "web", "name": "Firefox on Linux"}}, device=pc, expect=201)
    qr_id, poll = login["id"], login["pollSecret"]
    call("4. The PC reads its state (poll secret + proof)", "GET", f"/api/v1/qr/{qr_id}", device=pc, token=poll, scheme="Bearer")
    scan = call("5. The phone scans the QR's url", "POST", f"/api/v1/qr/{qr_id}/scan", device=phone, token=phone_token)
    status = call("6. The PC sees who scanned and the number to show", "GET", f"/api/v1/qr/{qr_id}?wait=5&state=pending",
                  device=pc, token=poll, scheme="Bearer")
    call("7. The user picks that number on the phone and confirms", "POST", f"/api/v1/qr/{qr_id}/confirm",
         {"ticket": scan["ticket"], "match": status["match"]}, device=phone, token=phone_token)
    done = call("8. The PC collects its token", "GET", f"/api/v1/qr/{qr_id}", device=pc, token=poll, scheme="Bearer")
    pc_token = done["token"]["accessToken"]
    call("9. The PC calls the API with its token and a proof of its key", "GET", "/api/v1/me", device=pc, token=pc_token)
    call("10. The same token with another key is refused", "GET", "/api/v1/me", device=Device(), token=pc_token, expect=401)
    call("11. The phone lists the linked devices", "GET", "/api/v1/devices", device=phone, token=phone_token)
    call("12. Remote logout of the PC", "DELETE", f"/api/v1/devices/{done['token']['deviceId']}",
         device=phone, token=phone_token, expect=204)
    call("13. The PC's token no longer works", "GET", "/api/v1/me", device=pc, token=pc_token, expect=401)
    print("\nexample flow: 13 passed, 0 failed")


if __name__ == "__main__":
    main()

"""Schemathesis hooks for fuzzing QRLogin: real credentials, so the fuzzer reaches the handlers
behind them instead of stopping at the 401 of a missing proof.

Every request of an operation whose `security` names a DPoP proof gets a fresh, valid one
(RFC 9449: ES256, this run's key, `htm`/`htu` of the request, a new `jti`), and one that names
the phone's device token also gets `Authorization: DPoP <token>` and the proof's `ath`. The
token comes from registering an account and signing in with the password. When the fuzzer's own
requests revoke it (it may log itself out or remove its device), the next 401 makes schemathesis
call `get` again (its default `retry_on=[401]`; a run reports how often, "Re-authenticated N
times"). The poll secret
of a PC is not supplied: a generated request id is never one this run created.

Loaded by scripts/openapi/run.sh with SCHEMATHESIS_HOOKS=fuzz_hooks; the server's public URL
comes in QRLOGIN_FUZZ_PUBLIC_URL.
"""
import base64
import hashlib
import json
import os
import secrets
import time
import urllib.request

import schemathesis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

BASE = os.environ["QRLOGIN_FUZZ_PUBLIC_URL"].rstrip("/")
PASSWORD = "correct horse battery"
KEY = ec.generate_private_key(ec.SECP256R1())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwk() -> dict:
    numbers = KEY.public_key().public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}


JWK = _jwk()


def proof(method: str, url: str, token: str | None = None) -> str:
    header = {"alg": "ES256", "jwk": JWK, "typ": "dpop+jwt"}
    claims = {"htm": method, "htu": url, "iat": int(time.time()), "jti": b64(secrets.token_bytes(16))}
    if token:
        claims["ath"] = b64(hashlib.sha256(token.encode()).digest())
    signing = b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    r, s = decode_dss_signature(KEY.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
    return signing + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def _post(path: str, body: dict, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def sign_in() -> str:
    """A new account signed in on a phone with this run's key; returns its access token."""
    username = "fuzz" + secrets.token_hex(4)
    status, body = _post("/api/v1/accounts", {"username": username, "password": PASSWORD}, {})
    assert status == 201, (status, body)
    status, body = _post("/api/v1/auth/password",
                         {"username": username, "password": PASSWORD, "device": {"type": "android", "name": "fuzzer"}},
                         {"DPoP": proof("POST", BASE + "/api/v1/auth/password")})
    assert status == 201, (status, body)
    return body["accessToken"]


def _schemes(case) -> set[str]:
    raw = case.operation.definition.raw
    requirements = raw.get("security", [])
    return {name for requirement in requirements for name in requirement}


@schemathesis.auth()
class DPoPAuth:
    def get(self, case, context):
        return sign_in()

    def set(self, case, token, context):
        schemes = _schemes(case)
        if not schemes & {"DPoPProof", "DeviceToken"}:
            return
        case.headers = case.headers or {}
        url = BASE + case.formatted_path
        if "DeviceToken" in schemes:
            case.headers["Authorization"] = f"DPoP {token}"
            case.headers["DPoP"] = proof(case.method.upper(), url, token)
        else:
            case.headers["DPoP"] = proof(case.method.upper(), url)

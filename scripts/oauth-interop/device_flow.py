#!/usr/bin/env python3
"""OAuth interop check: QRLogin's authorization server driven by an independent client library.

The device side is `requests-oauth2client` (PyPI), used through its public API only: RFC 8414
discovery, the RFC 8628 device grant with RFC 9449 DPoP (ES256 key made by the library, nonces
retried by the library), refresh with rotation, RFC 7662 introspection and RFC 7009 revocation.
The phone side is QRLogin's own JSON API, spoken with plain `requests` and `cryptography`.

Two device grants run, so that each check means one thing:
  1. poll -> DPoP tokens; refresh (rotated); introspect (a refresh token is visible only to its
     own client); revoke the access token, then the refresh token: both introspect as inactive
     and the refresh token refreshes no more.
  2. poll -> DPoP tokens; refresh (rotated); reusing the old refresh token is invalid_grant and
     revokes the family, so the new refresh token is invalid_grant too.

Usage: device_flow.py BASE_URL CLIENT_ID [--secret S] [--introspector-id ID --introspector-secret S]
  BASE_URL is the issuer, without a trailing slash. Introspection needs a confidential client:
  the introspector, or the device client itself when it has --secret.
Exits non-zero with a message naming the failed check.
"""
import argparse
import base64
import hashlib
import json
import secrets
import sys
import time
from importlib.metadata import version
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from requests_oauth2client import (ClientSecretBasic, DeviceAuthorizationPollingJob, DPoPKey, DPoPToken,
                                   InvalidGrant, InvalidTokenResponse, InvalidUseDPoPNonceResponse, OAuth2Client,
                                   OAuth2Error, PublicApp, oauth2_discovery_document_url)

SCOPE = "openid profile offline_access"
LIBRARY = "requests-oauth2client " + version("requests-oauth2client")


class Failed(Exception):
    """A check did not hold."""


def check(condition, message: str):
    if not condition:
        raise Failed(message)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def oauth_error_code(response: requests.Response):
    try:
        return response.json().get("error")
    except ValueError:
        return None


def normalize_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


def rfc7638_thumbprint(jwk: dict) -> str:
    """Computed here from the public JWK, independently of the library's own `dpop_jkt`."""
    canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


class Phone:
    """The user's phone: its own P-256 key, signed in over QRLogin's JSON API with DPoP."""

    def __init__(self, base: str):
        self.base, self.http, self.token, self.nonce = base, requests.Session(), None, None
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC",
                    "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}

    def proof(self, method: str, path: str) -> str:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        claims = {"htm": method, "htu": self.base + path.split("?")[0], "iat": int(time.time()),
                  "jti": secrets.token_urlsafe(16)}
        if self.token:
            claims["ath"] = b64url(hashlib.sha256(self.token.encode()).digest())
        if self.nonce:
            claims["nonce"] = self.nonce
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def call(self, method: str, path: str, body=None, expect=(200,)):
        for attempt in range(2):
            headers = {"DPoP": self.proof(method, path)}
            if self.token:
                headers["Authorization"] = "DPoP " + self.token
            response = self.http.request(method, self.base + path, json=body, headers=headers, timeout=10)
            self.nonce = response.headers.get("DPoP-Nonce", self.nonce)
            asked_for_nonce = response.status_code in (400, 401) and (
                "use_dpop_nonce" in response.headers.get("WWW-Authenticate", "")
                or oauth_error_code(response) == "use_dpop_nonce")
            if not (asked_for_nonce and attempt == 0 and "DPoP-Nonce" in response.headers):
                break
        check(response.status_code in expect,
              f"phone {method} {path}: expected {expect}, got {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def sign_up_and_in(self):
        username, password = "oauth" + secrets.token_hex(4), "correct horse battery staple"
        self.call("POST", "/api/v1/accounts",
                  {"username": username, "password": password, "displayName": "OAuth Interop"}, expect=(201,))
        session = self.call("POST", "/api/v1/auth/password", {"username": username, "password": password,
                            "device": {"type": "ios", "name": "Test phone"}}, expect=(201,))
        self.token = session["accessToken"]
        return username

    def approve(self, request_id: str, user_code: str, client_id: str):
        """Scans the device's QR request, picks the device's user code and confirms."""
        scan = self.call("POST", f"/api/v1/qr/{request_id}/scan")
        for field in ("ticket", "userCodeChoices", "client", "scopes", "requester"):
            check(field in scan, f"scan answer lacks '{field}': {scan}")
        choices = scan["userCodeChoices"]
        check(len(choices) == 3, f"expected three userCodeChoices, got {choices}")
        matching = [code for code in choices if normalize_code(code) == normalize_code(user_code)]
        check(len(matching) == 1, f"the device's user_code {user_code} is not exactly once among {choices}")
        check(scan["client"].get("id") == client_id, f"scan names client {scan['client']}, expected {client_id}")
        scopes = [scope if isinstance(scope, str) else scope.get("name") for scope in scan["scopes"]]
        check(set(scopes) == set(SCOPE.split()), f"scan lists scopes {scopes}, expected {SCOPE}")
        self.call("POST", f"/api/v1/qr/{request_id}/confirm", {"ticket": scan["ticket"], "userCode": matching[0]},
                  expect=(200, 204))
        print(f"  phone: scanned {request_id}, picked {matching[0]} among {choices}, confirmed")


def discover(base: str) -> dict:
    """Fetches RFC 8414 metadata at the URL the library derives from the issuer."""
    url = oauth2_discovery_document_url(base)
    check(url == base + "/.well-known/oauth-authorization-server", f"library derived metadata URL {url}")
    response = requests.get(url, timeout=10)
    check(response.status_code == 200, f"GET {url}: {response.status_code} {response.text[:300]}")
    metadata = response.json()
    check(metadata.get("issuer") == base, f"issuer is {metadata.get('issuer')!r}, expected exactly {base!r}")
    for name in ("token_endpoint", "device_authorization_endpoint", "introspection_endpoint", "revocation_endpoint"):
        check(name in metadata, f"metadata lacks {name}")
    if "dpop_signing_alg_values_supported" in metadata:
        check("ES256" in metadata["dpop_signing_alg_values_supported"], "metadata: DPoP ES256 not supported")
    print(f"ok: discovered {url}, issuer matches")
    return metadata


def make_client(metadata: dict, base: str, auth) -> OAuth2Client:
    # from_discovery_document checks the issuer again, but ignores device_authorization_endpoint,
    # so it is passed on by hand. testing=True lets the library accept http:// and custom ports.
    return OAuth2Client.from_discovery_document(
        metadata, issuer=base, auth=auth, testing=True,
        device_authorization_endpoint=metadata["device_authorization_endpoint"])


def start_device_grant(client: OAuth2Client, key: DPoPKey):
    """Device authorization request carrying a DPoP proof made by the library's key.

    The library proofs only token requests, so the proof is added as a header here; a
    use_dpop_nonce answer is fed to the key's own nonce handling and the request retried, at
    most three tries in all, as the library does at the token endpoint.
    """
    for _ in range(3):
        proof = key.proof(htm="POST", htu=client.device_authorization_endpoint, nonce=key.as_nonce)
        try:
            return client.authorize_device(scope=SCOPE, requests_kwargs={"headers": {"DPoP": str(proof)}})
        except InvalidTokenResponse as exc:
            if oauth_error_code(exc.response) != "use_dpop_nonce":
                raise
            key.handle_as_provided_dpop_nonce(exc.response)
    raise Failed("device authorization asked for a new DPoP nonce three times in a row")


def device_grant(client: OAuth2Client, phone: Phone, label: str) -> DPoPToken:
    key = DPoPKey.generate(alg="ES256")
    grant = start_device_grant(client, key)
    check(grant.verification_uri_complete, "device authorization answer lacks verification_uri_complete")
    check(grant.expires_at, "device authorization answer lacks expires_in")
    print(f"ok: {label}: device authorization, user_code {grant.user_code}, interval {grant.interval}")

    poller = DeviceAuthorizationPollingJob(client, grant, dpop=True, dpop_key=key)
    interval = poller.interval
    check(poller() is None, "a token came before the phone approved")
    check(poller.interval == interval, "the first poll got slow_down although it waited the interval")
    print(f"ok: {label}: authorization_pending before approval")

    phone.approve(urlsplit(grant.verification_uri_complete).path.rstrip("/").rsplit("/", 1)[-1],
                  grant.user_code, client.client_id)
    deadline = time.monotonic() + 120
    token = None
    while token is None:
        check(time.monotonic() < deadline, "no token 120 s after the phone confirmed")
        token = poller()
    check_dpop_token(token, key, f"{label}: device_code grant")
    return token


def check_dpop_token(token, key: DPoPKey, what: str):
    check(isinstance(token, DPoPToken), f"{what}: got {type(token).__name__}, expected a DPoPToken")
    check(token.token_type == "DPoP", f"{what}: token_type is {token.token_type!r}, expected 'DPoP'")
    check(token.dpop_key is key, f"{what}: the token is not bound to the key that proofed the request")
    check(token.refresh_token, f"{what}: no refresh token although offline_access was granted")
    print(f"ok: {what}: DPoP token, scope {token.scope!r}, refresh token present")


def refresh_rotates(client: OAuth2Client, token: DPoPToken, label: str) -> DPoPToken:
    refreshed = client.refresh_token(token)  # proofed with token.dpop_key by the library
    check_dpop_token(refreshed, token.dpop_key, f"{label}: refresh_token grant")
    check(refreshed.refresh_token != token.refresh_token, f"{label}: the refresh token did not rotate")
    check(refreshed.access_token != token.access_token, f"{label}: refresh returned the same access token")
    print(f"ok: {label}: refresh token rotated")
    return refreshed


def expect_invalid_grant(action, what: str):
    try:
        action()
    except InvalidGrant:
        print(f"ok: {what}: invalid_grant")
        return
    except OAuth2Error as exc:
        raise Failed(f"{what}: expected invalid_grant, got {getattr(exc, 'error', exc)}: {exc.response.text[:300]}")
    raise Failed(f"{what}: expected invalid_grant, but it succeeded")


def introspect(introspector: OAuth2Client, value: str, hint: str) -> dict:
    answer = introspector.introspect_token(value, token_type_hint=hint)
    check(isinstance(answer, dict) and isinstance(answer.get("active"), bool),
          f"introspection answer is not RFC 7662 JSON: {answer!r}")
    return answer


def check_introspection(answer: dict, client_id: str, username: str, key: DPoPKey):
    check(answer["active"] is True, f"access token introspects as inactive: {answer}")
    check(answer.get("client_id") == client_id, f"introspection client_id {answer.get('client_id')!r}")
    check(set(str(answer.get("scope", "")).split()) == set(SCOPE.split()), f"introspection scope {answer.get('scope')!r}")
    check(answer.get("token_type") == "DPoP", f"introspection token_type {answer.get('token_type')!r}")
    check(key.dpop_jkt == rfc7638_thumbprint(dict(key.public_jwk)), "library's jkt is not the RFC 7638 thumbprint")
    check((answer.get("cnf") or {}).get("jkt") == key.dpop_jkt,
          f"introspection cnf {answer.get('cnf')!r}, expected jkt {key.dpop_jkt}")
    check(answer.get("username") == username, f"introspection username {answer.get('username')!r}, expected {username}")
    for claim in ("sub", "exp", "iat"):
        check(claim in answer, f"introspection lacks {claim}: {answer}")
    check(answer["exp"] > time.time() > answer["iat"] - 60, f"introspection exp/iat out of range: {answer}")
    print(f"ok: introspection: active, client_id, scope, DPoP, cnf.jkt, sub {answer['sub']}, username, exp, iat")


def run(args):
    base = args.base_url
    check(not base.endswith("/"), "give BASE_URL without a trailing slash (it is the issuer)")
    if bool(args.introspector_id) != bool(args.introspector_secret):
        raise Failed("--introspector-id and --introspector-secret go together")
    if args.introspector_id:
        introspector_auth = ClientSecretBasic(args.introspector_id, args.introspector_secret)
    elif args.secret:
        introspector_auth = ClientSecretBasic(args.client_id, args.secret)
    else:
        raise Failed("introspection needs a confidential client: pass --introspector-id/--introspector-secret")

    metadata = discover(base)
    client = make_client(metadata, base, ClientSecretBasic(args.client_id, args.secret) if args.secret
                         else PublicApp(args.client_id))
    introspector = make_client(metadata, base, introspector_auth)
    phone = Phone(base)
    username = phone.sign_up_and_in()
    print(f"ok: phone registered and signed in as {username}")

    # Grant 1: refresh, introspection, revocation.
    first = device_grant(client, phone, "grant 1")
    token = refresh_rotates(client, first, "grant 1")
    check_introspection(introspect(introspector, token.access_token, "access_token"), args.client_id, username,
                        token.dpop_key)
    own_refresh = not args.introspector_id
    check(introspect(introspector, token.refresh_token, "refresh_token")["active"] is own_refresh,
          "the live refresh token introspects as inactive to its own client" if own_refresh
          else "another client's refresh token introspects as active (RFC 7662 lets only its client see it)")
    print("ok: grant 1: the refresh token introspects as " + ("active to its own client" if own_refresh
                                                            else "inactive to another client"))
    check(client.revoke_access_token(token) is True, "revocation of the access token failed")
    check(introspect(introspector, token.access_token, "access_token")["active"] is False,
          "the revoked access token still introspects as active")
    print("ok: grant 1: access token revoked, introspects inactive")
    check(client.revoke_refresh_token(token) is True, "revocation of the refresh token failed")
    check(introspect(introspector, token.refresh_token, "refresh_token")["active"] is False,
          "the revoked refresh token still introspects as active")
    expect_invalid_grant(lambda: client.refresh_token(token), "grant 1: refreshing with the revoked refresh token")
    print("ok: grant 1: refresh token revoked, introspects inactive, refreshes no more")

    # Grant 2: refresh token reuse detection.
    old = device_grant(client, phone, "grant 2")
    new = refresh_rotates(client, old, "grant 2")
    expect_invalid_grant(lambda: client.refresh_token(old), "grant 2: reusing the rotated-out refresh token")
    expect_invalid_grant(lambda: client.refresh_token(new), "grant 2: the new refresh token after that reuse")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base_url", metavar="BASE_URL")
    parser.add_argument("client_id", metavar="CLIENT_ID")
    parser.add_argument("--secret", help="client secret of CLIENT_ID, if it is confidential (client_secret_basic)")
    parser.add_argument("--introspector-id", help="confidential client that may introspect")
    parser.add_argument("--introspector-secret")
    args = parser.parse_args()
    try:
        run(args)
    except Failed as exc:
        sys.exit(f"FAILED: {exc}")
    except (OAuth2Error, InvalidUseDPoPNonceResponse) as exc:
        response = exc.response
        sys.exit(f"FAILED: {type(exc).__name__}: {exc}\n  {response.request.method} {response.url} -> "
                 f"{response.status_code}: {response.text[:500]}")
    except requests.RequestException as exc:
        sys.exit(f"FAILED: HTTP error: {exc}")
    print(f"oauth interop: device grant with DPoP, refresh, introspect, revoke passed ({LIBRARY})")


if __name__ == "__main__":
    main()

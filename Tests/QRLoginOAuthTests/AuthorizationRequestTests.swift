import Foundation
import QRLoginOAuth
import Testing

@Suite struct PKCETests {
    @Test func theRFC7636ExampleVerifies() {
        // RFC 7636 Appendix B.
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        #expect(PKCE.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", challenge: challenge))
        #expect(!PKCE.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge: challenge))
        #expect(!PKCE.verify("short", challenge: challenge), "a verifier has 43 to 128 characters")
        #expect(!PKCE.verify(String(repeating: "a", count: 129), challenge: challenge))
        #expect(PKCE.isValidChallenge(challenge))
        #expect(!PKCE.isValidChallenge(challenge + "="))
    }
}

@Suite struct AuthorizationRequestTests {
    static let client = OAuthClient(
        id: "web", name: "Wiki", type: .public, secretHash: nil, redirectURIs: ["https://wiki.example/cb"],
        grantTypes: [.authorizationCode, .refreshToken], createdAt: Date()
    )
    static let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    static let good: [String: String] = [
        "client_id": "web", "redirect_uri": "https://wiki.example/cb", "response_type": "code", "scope": "openid profile",
        "state": "s1", "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256",
    ]

    func check(_ changes: [String: String?], client: OAuthClient? = client) throws(AuthorizationRequestError) -> AuthorizationRequest {
        var parameters = Self.good
        for (name, value) in changes { parameters[name] = value }
        return try AuthorizationRequestRules.check(parameters, client: client)
    }

    func redirectedError(_ changes: [String: String?]) -> String? {
        do {
            _ = try check(changes)
            return nil
        } catch {
            guard case .redirect(let oauth, let uri, let state) = error else { return "page" }
            #expect(uri == "https://wiki.example/cb")
            #expect(state == (changes["state"] ?? "s1"))
            return oauth.code.rawValue
        }
    }

    @Test func aGoodRequestIsAccepted() throws {
        let request = try check([:])
        #expect(request.scopes == ["openid", "profile"])
        #expect(request.codeChallenge == Self.challenge)
        #expect(request.prompt == [])
        let more = try check(["prompt": "login", "max_age": "300", "login_hint": "alice", "dpop_jkt": Self.challenge])
        #expect(more.prompt == [.login] && more.maxAge == 300 && more.loginHint == "alice" && more.dpopJKT == Self.challenge)
    }

    @Test func anUnknownClientOrRedirectIsNeverRedirected() {
        for changes: [String: String?] in [["client_id": nil], ["client_id": "other"], ["redirect_uri": nil],
                                           ["redirect_uri": "https://evil.example/cb"], ["redirect_uri": "https://wiki.example/cb/"],
                                           ["redirect_uri": "https://wiki.example/cb?x=1"]] {
            #expect(redirectedError(changes) == "page", "\(changes)")
        }
        #expect(throws: AuthorizationRequestError.self) { try check([:], client: nil) }
    }

    @Test(arguments: [
        (["response_type": "token"], "unsupported_response_type"),
        (["response_type": nil], "invalid_request"),
        (["scope": "profile"], "invalid_scope"),
        (["scope": "openid admin"], "invalid_scope"),
        (["code_challenge": nil, "code_challenge_method": nil], "invalid_request"),
        (["code_challenge_method": "plain"], "invalid_request"),
        (["code_challenge": "short"], "invalid_request"),
        (["prompt": "none login"], "invalid_request"),
        (["prompt": "sometimes"], "invalid_request"),
        (["max_age": "-1"], "invalid_request"),
        (["max_age": "+5"], "invalid_request"),
        (["response_mode": "fragment"], "invalid_request"),
        (["request": "eyJ"], "request_not_supported"),
        (["request_uri": "urn:x"], "invalid_request"),
        (["dpop_jkt": "nope"], "invalid_request"),
        (["nonce": String(repeating: "n", count: 513)], "invalid_request"),
    ] as [([String: String?], String)])
    func everyOtherMistakeGoesBackToTheApp(changes: [String: String?], error: String) {
        #expect(redirectedError(changes) == error)
    }

    @Test func aConfidentialClientMaySkipPKCEButNotUseTheCodeFlowUnallowed() throws {
        var confidential = Self.client
        confidential.type = .confidential
        confidential.secretHash = "h"
        _ = try check(["code_challenge": nil, "code_challenge_method": nil], client: confidential)
        var deviceOnly = Self.client
        deviceOnly.grantTypes = [.deviceCode]
        do {
            _ = try check([:], client: deviceOnly)
            Issue.record("accepted")
        } catch {
            guard case .redirect(let oauth, _, _) = error else { Issue.record("not redirected"); return }
            #expect(oauth.code == .unauthorizedClient)
        }
    }
}

@Suite struct CodeRedemptionTests {
    let now = Date(timeIntervalSince1970: 5_000)
    static let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    func code(jkt: String? = nil, challenge: String? = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") -> AuthorizationCode {
        AuthorizationCode(hash: "h", clientId: "web", accountId: "acc", redirectURI: "https://app.example/cb", scopes: ["openid"], nonce: nil, codeChallenge: challenge, dpopJKT: jkt, authTime: now, amr: ["qr"], sessionId: nil, createdAt: now, expiresAt: now.addingTimeInterval(60))
    }

    let grant = IssuedGrant(family: TokenFamily(id: "f", clientId: "web", accountId: "acc", scopes: ["openid"], refreshJKT: nil, origin: .authorizationCode, createdAt: Date(), expiresAt: Date()), tokens: [])

    func decide(_ code: AuthorizationCode, client: String = "web", redirect: String? = "https://app.example/cb", verifier: String? = verifier, jkt: String? = nil, at: Date? = nil) throws(OAuthError) -> CodeRedemption {
        try CodeRedemptionRules.decide(code, clientId: client, redirectURI: redirect, verifier: verifier, proofJKT: jkt, now: at ?? now) { grant }
    }

    @Test func theRightClientRedirectAndVerifierRedeem() throws {
        #expect(try decide(code()) == .issue(grant))
        #expect(try decide(code(challenge: nil), verifier: nil) == .issue(grant))
    }

    @Test func stolenWrongOrLateCodesAreRefused() {
        #expect(throws: OAuthError.self, "another client") { try decide(code(), client: "thief") }
        #expect(throws: OAuthError.self, "wrong verifier") { try decide(code(), verifier: Self.verifier.replacingOccurrences(of: "d", with: "e")) }
        #expect(throws: OAuthError.self, "no verifier") { try decide(code(), verifier: nil) }
        #expect(throws: OAuthError.self, "a verifier the request never had a challenge for") { try decide(code(challenge: nil)) }
        #expect(throws: OAuthError.self, "another redirect URI") { try decide(code(), redirect: "https://evil.example/cb") }
        #expect(throws: OAuthError.self, "no redirect URI") { try decide(code(), redirect: nil) }
        #expect(throws: OAuthError.self, "expired") { try decide(code(), at: now.addingTimeInterval(60)) }
        #expect(throws: OAuthError(.invalidDPoPProof, "the code is bound to a DPoP key (dpop_jkt); prove possession of that key")) { try decide(code(jkt: "k"), jkt: "other") }
    }

    @Test func aUsedCodeRevokesWhatItIssued() throws {
        var used = code()
        used.usedAt = now
        #expect(try decide(used) == .revokeIssued)
        #expect(throws: OAuthError.self, "but not when another client presents it") { try decide(used, client: "thief") }
    }
}

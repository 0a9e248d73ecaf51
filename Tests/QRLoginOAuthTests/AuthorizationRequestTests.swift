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
        (["request_uri": "urn:x"], "request_uri_not_supported"),
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

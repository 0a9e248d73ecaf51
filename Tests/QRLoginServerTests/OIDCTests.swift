import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import NIOCore
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Testing

/// A relying party in the tests: its client record, PKCE pair, and the browser's cookies.
struct TestRP {
    static let redirect = "https://wiki.example/cb"
    static let bye = "https://wiki.example/signed-out"
    static let client = OAuthClient(id: "wiki", name: "Team wiki", type: .public, secretHash: nil, redirectURIs: [redirect], grantTypes: [.authorizationCode, .refreshToken], postLogoutRedirectURIs: [bye], createdAt: Date())
    static let secret = "qrl_cs_wiki-backend-secret-0123456789abcdefghijklmnop"
    static let backend = OAuthClient(id: "wiki-backend", name: "Team wiki (server)", type: .confidential, secretHash: ClientSecret.hash(secret), redirectURIs: [redirect], grantTypes: [.authorizationCode], idTokenAlgorithm: .rs256, createdAt: Date())
    static let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    static let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

    static func store() async throws -> MemoryStore {
        let store = try await OAuthClients.store()
        try await store.upsertClient(client)
        try await store.upsertClient(backend)
        return store
    }

    static func query(client: String = "wiki", _ extra: [(String, String)] = []) -> String {
        var parameters = [("response_type", "code"), ("client_id", client), ("redirect_uri", redirect), ("scope", "openid profile"),
                          ("state", "st-1"), ("nonce", "no-1"), ("code_challenge", challenge), ("code_challenge_method", "S256")]
        parameters += extra
        return parameters.map { "\($0.0)=\(API.encode($0.1))" }.joined(separator: "&")
    }
}

extension Reply {
    /// The redirect's query parameters.
    var redirectParameters: [String: String] {
        guard let location = headers[.location], let components = URLComponents(string: location) else { return [:] }
        return Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
    }

    /// A cookie the answer sets, by name.
    func setCookie(_ name: String) -> String? {
        for value in headers[values: .setCookie] where value.hasPrefix(name + "=") {
            return String(value.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }

    /// A `<meta name=NAME content=…>` value of a page.
    func meta(_ name: String) -> String? {
        guard let range = text.range(of: #"<meta name="\#(name)" content=""#) else { return nil }
        return String(text[range.upperBound...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
    }
}

extension API {
    func get(_ path: String, cookie: String? = nil) async throws -> Reply {
        var headers: HTTPFields = [:]
        if let cookie { headers[.cookie] = cookie }
        return try await call(.get, path, headers: headers)
    }

    /// Opens the login screen for `query` and signs in with the password fallback. Returns the
    /// redirect and the session cookie.
    func passwordLogin(query: String, username: String = "alice") async throws -> (redirect: [String: String], location: String, session: String) {
        let page = try await get("/authorize?" + query)
        #expect(page.status == .ok, "\(page.text)")
        let csrf = try #require(page.meta("qrlogin-csrf"))
        let csrfCookie = try #require(page.setCookie("qrlogin_csrf"))
        let finished = try await call(.post, "/authorize/password", json: ["query": query, "csrf": csrf, "username": username, "password": "correct horse battery"], headers: [.cookie: "qrlogin_csrf=\(csrfCookie)"])
        #expect(finished.status == .ok, "\(finished.text)")
        let location = try #require(finished["redirect"] as? String)
        let components = try #require(URLComponents(string: location))
        let parameters = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { first, _ in first })
        return (parameters, location, try #require(finished.setCookie("qrlogin_session")))
    }

    /// Redeems `code` as the public RP.
    func redeem(_ code: String, client: String = "wiki", verifier: String = TestRP.verifier, redirect: String = TestRP.redirect, key: TestDevice? = nil, authorization: String? = nil) async throws -> Reply {
        var parameters = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect), ("code_verifier", verifier)]
        if authorization == nil { parameters.append(("client_id", client)) }
        return try await form("/oauth/token", parameters, device: key, authorization: authorization)
    }
}

@Suite struct OIDCTests {
    @Test func discoveryMatchesTheOAuthMetadataAndListsWhatRelyingPartiesNeed() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let oidc = try await api.get("/.well-known/openid-configuration")
            let oauth = try await api.get("/.well-known/oauth-authorization-server")
            #expect(oidc.status == .ok)
            for key in ["issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "device_authorization_endpoint", "introspection_endpoint", "revocation_endpoint"] {
                #expect(oidc[key] as? String == oauth[key] as? String, "\(key)")
            }
            #expect(oidc["issuer"] as? String == testBaseURL)
            #expect(oidc["userinfo_endpoint"] as? String == testBaseURL + "/oauth/userinfo")
            #expect(oidc["id_token_signing_alg_values_supported"] as? [String] == ["ES256", "RS256"])
            #expect(oidc["subject_types_supported"] as? [String] == ["public"])
            #expect(oidc["response_types_supported"] as? [String] == ["code"])
            #expect(oidc["authorization_response_iss_parameter_supported"] as? Bool == true)
            #expect(oidc["pushed_authorization_request_endpoint"] as? String == testBaseURL + "/oauth/par")
            #expect(oidc["end_session_endpoint"] as? String == testBaseURL + "/oauth/logout")
            #expect(oidc["request_uri_parameter_supported"] as? Bool == false)
            #expect(oidc["prompt_values_supported"] as? [String] == ["none", "login", "consent", "select_account"], "every value /authorize takes")
            #expect(oauth["pushed_authorization_request_endpoint"] as? String == testBaseURL + "/oauth/par")
        }
    }

    @Test func thePasswordFallbackEndsInACodeThatGivesAnIDTokenCheckedByTheJWKS() async throws {
        try await withAPI(store: try await TestRP.store()) { api, clock in
            _ = try await api.signedInPhone("alice", displayName: "Alice Liddell")
            let (redirect, location, session) = try await api.passwordLogin(query: TestRP.query())
            #expect(location.hasPrefix(TestRP.redirect + "?"))
            #expect(redirect["state"] == "st-1")
            #expect(redirect["iss"] == testBaseURL, "RFC 9207")
            let code = try #require(redirect["code"])
            #expect(session.hasPrefix("qrl_ss_"))

            let tokens = try await api.redeem(code)
            #expect(tokens.status == .ok, "\(tokens.text)")
            #expect(tokens["token_type"] as? String == "Bearer")
            let idToken = try #require(tokens["id_token"] as? String)
            let jwks = try await api.get("/oauth/jwks")
            let verifier = JWTKeyCollection()
            try await verifier.add(jwksJSON: jwks.text)
            let claims = try await verifier.verify(idToken, as: RPClaims.self)
            #expect(claims.iss == testBaseURL && claims.aud.value == ["wiki"] && claims.nonce == "no-1")
            #expect(claims.amr == ["pwd"])
            #expect(claims.name == "Alice Liddell" && claims.preferredUsername == "alice")
            #expect(claims.atHash == IDTokenClaims.atHash(for: try #require(tokens["access_token"] as? String)))
            #expect(claims.authTime <= Int(clock.now.timeIntervalSince1970))

            let info = try await api.call(.get, "/oauth/userinfo", token: tokens["access_token"] as? String, scheme: "Bearer")
            #expect(info.status == .ok, "\(info.text)")
            #expect(info["sub"] as? String == claims.sub && info["preferred_username"] as? String == "alice")
        }
    }

    @Test func aCodeWorksOnceForItsClientVerifierAndRedirectAndAReplayRevokesItsTokens() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            _ = try await api.signedInPhone("alice")
            let code = try #require(try await api.passwordLogin(query: TestRP.query()).redirect["code"])
            let stolen = try await api.redeem(code, authorization: OAuthClients.basic("wiki-backend", TestRP.secret))
            #expect(stolen.oauthError == "invalid_grant", "a code stolen and redeemed by another client")
            #expect(try await api.redeem(code, verifier: String(repeating: "a", count: 43)).oauthError == "invalid_grant", "the wrong PKCE verifier")
            #expect(try await api.redeem(code, redirect: "https://wiki.example/other").oauthError == "invalid_grant")
            let first = try await api.redeem(code)
            #expect(first.status == .ok, "the refusals changed nothing: \(first.text)")
            let access = try #require(first["access_token"] as? String)
            #expect(try await api.introspect(access)["active"] as? Bool == true)
            #expect(try await api.redeem(code).oauthError == "invalid_grant", "a code redeemed twice")
            #expect(try await api.introspect(access)["active"] as? Bool == false, "and what it issued is revoked")
        }
    }

    @Test func aCodeExpiresAfterAMinute() async throws {
        try await withAPI(store: try await TestRP.store()) { api, clock in
            _ = try await api.signedInPhone("alice")
            let code = try #require(try await api.passwordLogin(query: TestRP.query()).redirect["code"])
            clock.advance(by: 61)
            #expect(try await api.redeem(code).oauthError == "invalid_grant")
        }
    }

    @Test func dpopJKTBindsTheCodeToTheKey() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            _ = try await api.signedInPhone("alice")
            let key = TestDevice()
            let code = try #require(try await api.passwordLogin(query: TestRP.query([("dpop_jkt", key.id)])).redirect["code"])
            #expect(try await api.redeem(code, key: TestDevice()).oauthError == "invalid_dpop_proof")
            #expect(try await api.redeem(code).oauthError == "invalid_dpop_proof")
            let tokens = try await api.redeem(code, key: key)
            #expect(tokens["token_type"] as? String == "DPoP", "\(tokens.text)")
            let access = try #require(tokens["access_token"] as? String)
            let bearer = try await api.call(.get, "/oauth/userinfo", token: access, scheme: "Bearer")
            #expect(bearer.status == .unauthorized, "a DPoP-bound token sent as Bearer")
            #expect(bearer.headers[values: .wwwAuthenticate].contains { $0.hasPrefix("DPoP") })
            let proven = try await api.call(.get, "/oauth/userinfo", device: key, token: access, scheme: "DPoP")
            #expect(proven.status == .ok, "\(proven.text)")
            // HEAD (RFC 9110 §9.3.2): the GET answer's status and headers, with a proof for HEAD.
            let head = try await api.call(.head, "/oauth/userinfo", device: key, token: access, scheme: "DPoP")
            #expect(head.status == .ok)
            #expect(head.body.readableBytes == 0)
            #expect(head.headers[.contentLength] == String(proven.body.readableBytes))
            #expect(try await api.call(.head, "/oauth/userinfo", token: access, scheme: "Bearer").status == .unauthorized)
        }
    }

    @Test func aConfidentialClientGetsRS256IDTokensAfterAuthenticating() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            _ = try await api.signedInPhone("alice")
            let code = try #require(try await api.passwordLogin(query: TestRP.query(client: "wiki-backend")).redirect["code"])
            #expect(try await api.redeem(code, authorization: OAuthClients.basic("wiki-backend", "qrl_cs_wrong")).status == .unauthorized)
            let tokens = try await api.redeem(code, authorization: OAuthClients.basic("wiki-backend", TestRP.secret))
            let idToken = try #require(tokens["id_token"] as? String, "\(tokens.text)")
            let header = try #require(Data(base64URL: String(idToken.split(separator: ".")[0])))
            #expect(String(decoding: header, as: UTF8.self).contains(#""alg":"RS256""#))
        }
    }

    @Test func badClientsAndRedirectsGetAPageNeverARedirect() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            for query in [TestRP.query(client: "nobody"), TestRP.query().replacingOccurrences(of: API.encode(TestRP.redirect), with: API.encode("https://evil.example/cb")),
                          TestRP.query() + "&redirect_uri=" + API.encode(TestRP.redirect), "scope=openid"] {
                let reply = try await api.get("/authorize?" + query)
                #expect(reply.status == .badRequest, "\(query)")
                #expect(reply.headers[.location] == nil, "an open redirect")
                #expect(reply.text.contains("data-testid=\"authorize-error\""))
            }
        }
    }

    @Test func otherMistakesGoBackToTheAppWithStateAndIss() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let noPKCE = try await api.get("/authorize?" + TestRP.query().replacingOccurrences(of: "&code_challenge=" + TestRP.challenge + "&code_challenge_method=S256", with: ""))
            #expect(noPKCE.status == .seeOther)
            #expect(noPKCE.redirectParameters["error"] == "invalid_request")
            #expect(noPKCE.redirectParameters["state"] == "st-1")
            #expect(noPKCE.redirectParameters["iss"] == testBaseURL)
            let twice = try await api.get("/authorize?" + TestRP.query() + "&state=other")
            #expect(twice.redirectParameters["error"] == "invalid_request")
            let noOpenID = try await api.get("/authorize?" + TestRP.query().replacingOccurrences(of: "openid+profile", with: "profile").replacingOccurrences(of: "openid%20profile", with: "profile"))
            #expect(noOpenID.redirectParameters["error"] == "invalid_scope")
        }
    }

    @Test func promptNoneWithoutASessionIsLoginRequiredAndASessionSignsInWithoutAScan() async throws {
        try await withAPI(store: try await TestRP.store()) { api, clock in
            _ = try await api.signedInPhone("alice")
            let none = try await api.get("/authorize?" + TestRP.query([("prompt", "none")]))
            #expect(none.redirectParameters["error"] == "login_required")
            #expect(none.redirectParameters["state"] == "st-1")

            let (_, _, session) = try await api.passwordLogin(query: TestRP.query())
            let cookie = "qrlogin_session=\(session)"
            let sso = try await api.get("/authorize?" + TestRP.query(client: "wiki-backend"), cookie: cookie)
            #expect(sso.status == .seeOther, "a second app goes through without a login")
            #expect(sso.redirectParameters["code"] != nil)
            #expect(try await api.get("/authorize?" + TestRP.query([("prompt", "none")]), cookie: cookie).redirectParameters["code"] != nil)
            let forced = try await api.get("/authorize?" + TestRP.query([("prompt", "login")]), cookie: cookie)
            #expect(forced.status == .ok, "prompt=login shows the login screen")
            // The phone that scans is the account and its confirm the consent: both ask for a scan.
            for prompt in ["consent", "select_account", "login consent"] {
                let asked = try await api.get("/authorize?" + TestRP.query([("prompt", prompt)]), cookie: cookie)
                #expect(asked.status == .ok, "prompt=\(prompt) shows the login screen")
                #expect(asked.headers[.location] == nil, "prompt=\(prompt) did not reuse the session")
            }
            clock.advance(by: 120)
            let old = try await api.get("/authorize?" + TestRP.query([("max_age", "60")]), cookie: cookie)
            #expect(old.status == .ok, "max_age asks for a fresh login")
            let oldNone = try await api.get("/authorize?" + TestRP.query([("max_age", "60"), ("prompt", "none")]), cookie: cookie)
            #expect(oldNone.redirectParameters["error"] == "login_required")
        }
    }

    @Test func aPlainQRLoginsTokenCannotFinishAnAppSignIn() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let page = try await api.get("/authorize?" + TestRP.query())
            let csrf = try #require(page.meta("qrlogin-csrf")), cookie = try #require(page.setCookie("qrlogin_csrf"))
            let plain = try await api.newLogin()
            let scan = try await api.scan(plain, by: phone)
            _ = try await api.confirm(plain, by: phone, scan: scan)
            var pc = plain.device
            pc.token = (try await api.pcStatus(plain)["token"] as? [String: Any])?["accessToken"] as? String
            let reply = try await api.call(.post, "/authorize/qr", json: ["query": TestRP.query(), "csrf": csrf, "loginRequest": plain.id], device: pc, token: pc.token, headers: [.cookie: "qrlogin_csrf=\(cookie)"])
            #expect(reply.status == .unauthorized, "the phone was never told of the app")
        }
    }

    @Test func aSessionNeverGrantsOfflineAccessSilently() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            _ = try await api.signedInPhone("alice")
            let (_, _, session) = try await api.passwordLogin(query: TestRP.query())
            let cookie = "qrlogin_session=\(session)"
            let offline = TestRP.query().replacingOccurrences(of: "openid%20profile", with: "openid%20offline_access")
            #expect(try await api.get("/authorize?" + offline, cookie: cookie).status == .ok, "the login screen, not a silent code")
            let silent = try await api.get("/authorize?" + offline + "&prompt=none", cookie: cookie)
            #expect(silent.redirectParameters["error"] == "consent_required")
        }
    }

    @Test func twoLoginScreensInOneBrowserShareTheirCSRFToken() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            _ = try await api.signedInPhone("alice")
            let first = try await api.get("/authorize?" + TestRP.query())
            let cookie = try #require(first.setCookie("qrlogin_csrf"))
            let second = try await api.get("/authorize?" + TestRP.query(client: "wiki-backend"), cookie: "qrlogin_csrf=\(cookie)")
            #expect(second.meta("qrlogin-csrf") == first.meta("qrlogin-csrf"), "the second page does not strand the first")
            let finished = try await api.call(.post, "/authorize/password", json: ["query": TestRP.query(), "csrf": try #require(first.meta("qrlogin-csrf")), "username": "alice", "password": "correct horse battery"], headers: [.cookie: "qrlogin_csrf=\(try #require(second.setCookie("qrlogin_csrf")))"])
            #expect(finished.status == .ok, "\(finished.text)")
        }
    }

    @Test func theLoginFormNeedsItsCSRFCookieAndTheRightPassword() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            _ = try await api.signedInPhone("alice")
            let page = try await api.get("/authorize?" + TestRP.query())
            let csrf = try #require(page.meta("qrlogin-csrf"))
            #expect(page.setCookie("qrlogin_csrf") != nil)
            #expect(page.headers[values: .setCookie].allSatisfy { $0.contains("HttpOnly") && $0.contains("SameSite=") })
            let noCookie = try await api.call(.post, "/authorize/password", json: ["query": TestRP.query(), "csrf": csrf, "username": "alice", "password": "correct horse battery"])
            #expect(noCookie.status == .badRequest, "a form posted from another site carries no cookie")
            let wrongCookie = try await api.call(.post, "/authorize/password", json: ["query": TestRP.query(), "csrf": csrf, "username": "alice", "password": "correct horse battery"], headers: [.cookie: "qrlogin_csrf=other"])
            #expect(wrongCookie.status == .badRequest)
            let wrongPassword = try await api.call(.post, "/authorize/password", json: ["query": TestRP.query(), "csrf": csrf, "username": "alice", "password": "wrong password!"], headers: [.cookie: "qrlogin_csrf=\(page.setCookie("qrlogin_csrf") ?? "")"])
            #expect(wrongPassword.status == .unauthorized)
            #expect(wrongPassword.setCookie("qrlogin_session") == nil)
        }
    }

    @Test func theOneTimeCodeFallbackSignsInWithAmrOTPAndPhoneClaims() async throws {
        let codes = CapturingCodeSender()
        try await withAPI(store: try await TestRP.store(), codes: codes) { api, _ in
            _ = try await api.signedInPhone("alice", phone: "+15550001234")
            let query = TestRP.query().replacingOccurrences(of: "openid%20profile", with: "openid%20phone")
            let page = try await api.get("/authorize?" + query)
            let csrf = try #require(page.meta("qrlogin-csrf")), cookie = "qrlogin_csrf=\(try #require(page.setCookie("qrlogin_csrf")))"
            let started = try await api.call(.post, "/authorize/code/start", json: ["csrf": csrf, "phone": "+15550001234"], headers: [.cookie: cookie])
            #expect(started.status == .accepted, "\(started.text)")
            let code = try #require(codes.code(for: "+15550001234"))
            let wrong = try await api.call(.post, "/authorize/code", json: ["query": query, "csrf": csrf, "phone": "+15550001234", "code": code == "000000" ? "111111" : "000000"], headers: [.cookie: cookie])
            #expect(wrong.status == .unauthorized)
            let finished = try await api.call(.post, "/authorize/code", json: ["query": query, "csrf": csrf, "phone": "+15550001234", "code": code], headers: [.cookie: cookie])
            #expect(finished.status == .ok, "\(finished.text)")
            let location = try #require(finished["redirect"] as? String)
            let redeemed = try await api.redeem(try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value))
            let verifier = JWTKeyCollection()
            try await verifier.add(jwksJSON: try await api.get("/oauth/jwks").text)
            let claims = try await verifier.verify(try #require(redeemed["id_token"] as? String), as: RPClaims.self)
            #expect(claims.amr == ["otp"])
            let info = try await api.call(.get, "/oauth/userinfo", token: redeemed["access_token"] as? String, scheme: "Bearer")
            #expect(info["phone_number"] as? String == "+15550001234")
            #expect(info["phone_number_verified"] as? Bool == false)
            #expect(info["name"] == nil, "no profile scope, no profile claims")
            let noCSRF = try await api.call(.post, "/authorize/code/start", json: ["csrf": csrf, "phone": "+15550001234"])
            #expect(noCSRF.status == .badRequest)
        }
    }

    @Test func passwordGuessesOnTheLoginScreenAreRateLimited() async throws {
        try await withAPI(store: try await TestRP.store(), configure: { $0.rateLimits = RateLimiter.defaultLimits }) { api, _ in
            let page = try await api.get("/authorize?" + TestRP.query())
            let csrf = try #require(page.meta("qrlogin-csrf")), cookie = try #require(page.setCookie("qrlogin_csrf"))
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<21 {
                let reply = try await api.call(.post, "/authorize/password", json: ["query": TestRP.query(), "csrf": csrf, "username": "alice", "password": "guess guess"], headers: [.cookie: "qrlogin_csrf=\(cookie)"])
                statuses.append(reply.status)
            }
            #expect(statuses.prefix(20).allSatisfy { $0 == .unauthorized })
            #expect(statuses.last == .tooManyRequests)
        }
    }

    @Test func theQRLoginScreenNamesTheAppOnThePhoneAndFinishesWithTheBrowsersNewToken() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let page = try await api.get("/authorize?" + TestRP.query())
            #expect(page.meta("qrlogin-client-name") == "Team wiki")
            let csrf = try #require(page.meta("qrlogin-csrf"))
            let csrfCookie = try #require(page.setCookie("qrlogin_csrf"))
            let browser = TestDevice()
            let created = try await api.call(.post, "/api/v1/qr", json: ["device": ["type": "web", "name": "Chromium"], "authorize": TestRP.query()], device: browser)
            #expect(created.status == .created, "\(created.text)")
            let login = API.PCLogin(device: browser, id: try #require(created["id"] as? String), pollSecret: try #require(created["pollSecret"] as? String), url: "")
            let scan = try await api.scan(login, by: phone)
            #expect((scan["client"] as? [String: Any])?["name"] as? String == "Team wiki")
            #expect((scan["scopes"] as? [[String: Any]])?.count == 2)
            #expect((scan["matchChoices"] as? [Int])?.count == 3)
            #expect(try await api.confirm(login, by: phone, scan: scan).status == .ok)
            let status = try await api.pcStatus(login)
            var signedIn = browser
            signedIn.token = (status["token"] as? [String: Any])?["accessToken"] as? String

            // The token answers for this login request only: not for another app, not a second time.
            let otherApp = try await api.call(.post, "/authorize/qr", json: ["query": TestRP.query(client: "wiki-backend"), "csrf": csrf, "loginRequest": login.id], device: signedIn, token: signedIn.token, headers: [.cookie: "qrlogin_csrf=\(csrfCookie)"])
            #expect(otherApp.status == .unauthorized, "the phone was shown Team wiki, not another app")
            let wider = try await api.call(.post, "/authorize/qr", json: ["query": TestRP.query([("scope", "openid profile phone")]).replacingOccurrences(of: "scope=openid%20profile&", with: ""), "csrf": csrf, "loginRequest": login.id], device: signedIn, token: signedIn.token, headers: [.cookie: "qrlogin_csrf=\(csrfCookie)"])
            #expect(wider.status != .ok, "more scopes than the phone was shown")
            let finished = try await api.call(.post, "/authorize/qr", json: ["query": TestRP.query(), "csrf": csrf, "loginRequest": login.id], device: signedIn, token: signedIn.token, headers: [.cookie: "qrlogin_csrf=\(csrfCookie)"])
            #expect(finished.status == .ok, "\(finished.text)")
            let replay = try await api.call(.post, "/authorize/qr", json: ["query": TestRP.query(), "csrf": csrf, "loginRequest": login.id], device: signedIn, token: signedIn.token, headers: [.cookie: "qrlogin_csrf=\(csrfCookie)"])
            #expect(replay.status == .unauthorized, "the token buys one redirect")
            #expect(try await api.call(.get, "/api/v1/me", device: signedIn, token: signedIn.token).status == .unauthorized, "and is no QRLogin session of its own")
            let location = try #require(finished["redirect"] as? String)
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let tokens = try await api.redeem(code)
            let idToken = try #require(tokens["id_token"] as? String)
            let verifier = JWTKeyCollection()
            try await verifier.add(jwksJSON: try await api.get("/oauth/jwks").text)
            #expect(try await verifier.verify(idToken, as: RPClaims.self).amr == ["qr"])

            let badQuery = try await api.call(.post, "/api/v1/qr", json: ["device": ["type": "web", "name": "Chromium"], "authorize": "client_id=nobody"], device: TestDevice())
            #expect(badQuery.status == .badRequest, "the app named on the phone is checked, not taken on trust")
        }
    }
}

/// RP-initiated logout.
@Suite struct OIDCLogoutTests {
    /// Signs in with the password and redeems the code: the session cookie and the ID token.
    func signedIn(_ api: API) async throws -> (cookie: String, idToken: String) {
        _ = try await api.signedInPhone("alice")
        let (redirect, _, session) = try await api.passwordLogin(query: TestRP.query())
        let tokens = try await api.redeem(try #require(redirect["code"]))
        return ("qrlogin_session=\(session)", try #require(tokens["id_token"] as? String))
    }

    @Test func anIDTokenHintLogsOutAtOnceAndReturnsToTheRegisteredURIWithState() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let (cookie, idToken) = try await signedIn(api)
            let query = "id_token_hint=\(idToken)&post_logout_redirect_uri=\(API.encode(TestRP.bye))&state=bye-1"
            let reply = try await api.get("/oauth/logout?" + query, cookie: cookie)
            #expect(reply.status == .seeOther)
            #expect(reply.headers[.location] == TestRP.bye + "?state=bye-1")
            #expect(reply.headers[values: .setCookie].contains { $0.hasPrefix("qrlogin_session=;") && $0.contains("Max-Age=0") })
            let again = try await api.get("/authorize?" + TestRP.query(), cookie: cookie)
            #expect(again.status == .ok, "the session is over: the login screen shows")
        }
    }

    @Test func anUnregisteredReturnURIIsRefusedWithAPage() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let (cookie, idToken) = try await signedIn(api)
            let reply = try await api.get("/oauth/logout?id_token_hint=\(idToken)&post_logout_redirect_uri=\(API.encode("https://evil.example/"))", cookie: cookie)
            #expect(reply.status == .badRequest)
            #expect(reply.headers[.location] == nil)
            let noClient = try await api.get("/oauth/logout?post_logout_redirect_uri=\(API.encode(TestRP.bye))", cookie: cookie)
            #expect(noClient.status == .badRequest, "a return URI needs a client to belong to")
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .seeOther, "still signed in")
        }
    }

    @Test func withoutAHintTheUserConfirmsWithAFormThatAnotherSiteCannotPost() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let (cookie, _) = try await signedIn(api)
            let ask = try await api.get("/oauth/logout?client_id=wiki&post_logout_redirect_uri=\(API.encode(TestRP.bye))", cookie: cookie)
            #expect(ask.status == .ok)
            #expect(ask.text.contains("data-testid=\"confirm-logout\""))
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .seeOther, "asking ends nothing")
            let csrf = try #require(ask.setCookie("qrlogin_csrf"))
            let body = "client_id=wiki&post_logout_redirect_uri=\(API.encode(TestRP.bye))&confirm=yes&csrf=\(csrf)"
            let forged = try await api.client.execute(uri: "/oauth/logout", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie], body: ByteBuffer(string: body)) { Reply(status: $0.status, headers: $0.headers, body: $0.body) }
            #expect(forged.text.contains("confirm-logout"), "without the CSRF cookie the form only asks again")
            let confirmed = try await api.client.execute(uri: "/oauth/logout", method: .post, headers: [.contentType: "application/x-www-form-urlencoded", .cookie: cookie + "; qrlogin_csrf=\(csrf)"], body: ByteBuffer(string: body)) { Reply(status: $0.status, headers: $0.headers, body: $0.body) }
            #expect(confirmed.status == .ok)
            #expect(confirmed.text.contains("return-to-app"))
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .ok, "signed out")
        }
    }

    @Test func aPasswordSignedBrowserIsListedAmongTheDevicesAndRemovingItEndsTheSession() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let (_, _, session) = try await api.passwordLogin(query: TestRP.query())
            let cookie = "qrlogin_session=\(session)"
            let devices = try #require(try await api.call(.get, "/api/v1/devices", device: phone, token: phone.token)["devices"] as? [[String: Any]])
            let browser = try #require(devices.first { ($0["id"] as? String)?.hasPrefix("browser-") == true })
            #expect(browser["type"] as? String == "web")
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .seeOther)
            let id = try #require(browser["id"] as? String)
            #expect(try await api.call(.delete, "/api/v1/devices/\(id)", device: phone, token: phone.token).status == .noContent)
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .ok, "signed out from the phone")
        }
    }

    @Test func overHTTPSTheCookiesAreHostPrefixedAndSecure() async throws {
        try await withAPI(store: try await TestRP.store(), configure: { $0.publicURL = "https://login.example" }) { api, _ in
            let page = try await api.get("/authorize?" + TestRP.query())
            let csrf = try #require(page.headers[values: .setCookie].first)
            #expect(csrf.hasPrefix("__Host-qrlogin_csrf="))
            #expect(csrf.contains("; Secure") && csrf.contains("Path=/") && !csrf.contains("Domain="))
            #expect(page.setCookie("qrlogin_csrf") == nil, "no unprefixed cookie")
        }
    }

    @Test func aForgedHintIsRefused() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let (cookie, idToken) = try await signedIn(api)
            var parts = idToken.split(separator: ".").map(String.init)
            parts[1] = Data(#"{"sub":"someone","aud":"wiki","iss":"x","exp":1,"iat":1}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
            let reply = try await api.get("/oauth/logout?id_token_hint=\(parts.joined(separator: "."))", cookie: cookie)
            #expect(reply.status == .badRequest)
        }
    }

    @Test func remoteLogoutOfTheBrowsersDeviceEndsItsSession() async throws {
        try await withAPI(store: try await TestRP.store()) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let page = try await api.get("/authorize?" + TestRP.query())
            let csrf = try #require(page.meta("qrlogin-csrf")), csrfCookie = try #require(page.setCookie("qrlogin_csrf"))
            let browser = TestDevice()
            let created = try await api.call(.post, "/api/v1/qr", json: ["device": ["type": "web", "name": "Chromium"], "authorize": TestRP.query()], device: browser)
            let login = API.PCLogin(device: browser, id: try #require(created["id"] as? String), pollSecret: try #require(created["pollSecret"] as? String), url: "")
            let scan = try await api.scan(login, by: phone)
            _ = try await api.confirm(login, by: phone, scan: scan)
            var signedIn = browser
            signedIn.token = (try await api.pcStatus(login)["token"] as? [String: Any])?["accessToken"] as? String
            let finished = try await api.call(.post, "/authorize/qr", json: ["query": TestRP.query(), "csrf": csrf, "loginRequest": login.id], device: signedIn, token: signedIn.token, headers: [.cookie: "qrlogin_csrf=\(csrfCookie)"])
            let cookie = "qrlogin_session=\(try #require(finished.setCookie("qrlogin_session")))"
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .seeOther)
            let devices = try await api.call(.get, "/api/v1/devices", device: phone, token: phone.token)
            #expect((devices["devices"] as? [[String: Any]])?.contains { $0["id"] as? String == browser.id } == true, "the browser is listed among the devices")
            #expect(try await api.call(.delete, "/api/v1/devices/\(browser.id)", device: phone, token: phone.token).status == .noContent)
            #expect(try await api.get("/authorize?" + TestRP.query(), cookie: cookie).status == .ok, "remote logout ended the session")
        }
    }
}

/// Pushed authorization requests (RFC 9126).
@Suite struct PARTests {
    static let parClient = OAuthClient(id: "par-app", name: "Payroll", type: .confidential, secretHash: ClientSecret.hash(TestRP.secret), redirectURIs: [TestRP.redirect], grantTypes: [.authorizationCode], requirePAR: true, createdAt: Date())

    func store() async throws -> MemoryStore {
        let store = try await TestRP.store()
        try await store.upsertClient(Self.parClient)
        return store
    }

    func pushed(_ api: API, _ params: [(String, String)], key: TestDevice? = nil) async throws -> Reply {
        try await api.form("/oauth/par", params, device: key, authorization: OAuthClients.basic("par-app", TestRP.secret))
    }

    static let request: [(String, String)] = [("response_type", "code"), ("redirect_uri", TestRP.redirect), ("scope", "openid"), ("state", "p-1"), ("nonce", "n"), ("code_challenge", TestRP.challenge), ("code_challenge_method", "S256")]

    @Test func aPushedRequestIsUsedByItsRequestURIAndAClientThatMustPushCannotSkipIt() async throws {
        try await withAPI(store: try await store()) { api, _ in
            let direct = try await api.get("/authorize?" + TestRP.query(client: "par-app"))
            #expect(direct.redirectParameters["error"] == "invalid_request", "this client must push")
            let reply = try await pushed(api, Self.request)
            #expect(reply.status == .created, "\(reply.text)")
            let uri = try #require(reply["request_uri"] as? String)
            #expect(uri.hasPrefix("urn:ietf:params:oauth:request_uri:"))
            #expect(reply["expires_in"] as? Int == 600)
            let page = try await api.get("/authorize?client_id=par-app&request_uri=\(API.encode(uri))")
            #expect(page.status == .ok, "\(page.text)")
            #expect(page.meta("qrlogin-client-name") == "Payroll")
            let other = try await api.get("/authorize?client_id=wiki&request_uri=\(API.encode(uri))")
            #expect(other.status == .badRequest, "another client cannot use it")
            let unknown = try await api.get("/authorize?client_id=par-app&request_uri=urn:ietf:params:oauth:request_uri:nope")
            #expect(unknown.status == .badRequest)
            #expect(unknown.headers[.location] == nil)

            _ = try await api.signedInPhone("alice")
            let query = "client_id=par-app&request_uri=\(API.encode(uri))"
            let (redirect, _, _) = try await api.passwordLogin(query: query)
            #expect(redirect["state"] == "p-1")
            let tokens = try await api.redeem(try #require(redirect["code"]), authorization: OAuthClients.basic("par-app", TestRP.secret))
            #expect(tokens["id_token"] != nil, "\(tokens.text)")
        }
    }

    @Test func badPushesAreRefusedAtOnce() async throws {
        try await withAPI(store: try await store()) { api, clock in
            #expect(try await pushed(api, Self.request.filter { $0.0 != "redirect_uri" }).oauthError == "invalid_request")
            #expect(try await pushed(api, Self.request.map { $0.0 == "scope" ? ($0.0, "profile") : $0 }).oauthError == "invalid_scope")
            #expect(try await pushed(api, Self.request + [("request_uri", "urn:x")]).oauthError == "invalid_request")
            let anonymous = try await api.form("/oauth/par", Self.request + [("client_id", "par-app")])
            #expect(anonymous.status == .unauthorized)
            let key = TestDevice()
            #expect(try await pushed(api, Self.request + [("dpop_jkt", TestRP.challenge)], key: key).oauthError == "invalid_request", "dpop_jkt and the proof disagree")
            let bound = try await pushed(api, Self.request, key: key)
            #expect(bound.status == .created)
            clock.advance(by: 601)
            let expired = try await api.get("/authorize?client_id=par-app&request_uri=\(API.encode(try #require(bound["request_uri"] as? String)))")
            #expect(expired.status == .badRequest)
        }
    }
}

/// What a relying party checks in an ID token.
struct RPClaims: JWTPayload {
    var iss: String
    var sub: String
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var iat: Int
    var nonce: String?
    var amr: [String]?
    var name: String?
    var preferredUsername: String?
    var atHash: String?
    var authTime: Int

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nonce, amr, name
        case preferredUsername = "preferred_username", atHash = "at_hash", authTime = "auth_time"
    }

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}

import Foundation
import QRLoginCore
import QRLoginOAuth

/// OpenID Connect sign-in for web apps: the authorization endpoint's decisions, the browser's
/// single sign-on session, codes, ID tokens and UserInfo. No HTTP in it.
struct OIDCService: Sendable {
    /// How long a code lives (it is redeemed by the app's backend right after the redirect).
    static let codeTTL: TimeInterval = 60
    /// How long a browser stays signed in for single sign-on.
    static let sessionTTL: TimeInterval = 7 * 24 * 3600
    /// How recent a QR login must be to finish an authorization request.
    static let freshLogin: TimeInterval = 300

    let oauth: OAuthService
    var login: LoginService { oauth.login }
    var store: any Store { oauth.store }
    var clock: any NowClock { oauth.clock }
    var issuer: String { oauth.issuer }

    // MARK: Authorization requests

    /// The parameters of a query or form text: single values, plus the names given more than once.
    static func parameters(_ text: String) -> (values: [String: String], repeated: Set<String>) {
        var values: [String: String] = [:]
        var repeated: Set<String> = []
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = FormBody.decode(parts[0]) else { continue }
            let value = parts.count > 1 ? FormBody.decode(parts[1]) : ""
            if values[name] != nil { repeated.insert(name) }
            values[name] = value ?? ""
        }
        return (values, repeated)
    }

    /// Checks the authorization request in `query`.
    /// - Throws: ``AuthorizationRequestError``: a page for a bad client or redirect URI, a
    ///   redirect for anything else.
    func check(query: String) async throws -> (request: AuthorizationRequest, client: OAuthClient) {
        guard query.utf8.count <= 8 * 1024 else { throw AuthorizationRequestError.noRedirect("The request is too long.") }
        var (values, repeated) = Self.parameters(query)
        if repeated.contains("client_id") || repeated.contains("redirect_uri") || repeated.contains("request_uri") {
            throw AuthorizationRequestError.noRedirect("client_id, redirect_uri or request_uri is given more than once.")
        }
        var pushed = false
        if let uri = values["request_uri"], !uri.isEmpty {
            // RFC 9126 §4: only the pushed parameters count, and only for the client that pushed them.
            guard uri.utf8.count <= 128, let stored = try await store.pushedRequest(uri: uri), stored.expiresAt > clock.now,
                  stored.clientId == values["client_id"]
            else { throw AuthorizationRequestError.noRedirect("The request_uri is unknown, expired, or belongs to another application.") }
            (values, repeated) = Self.parameters(stored.query)
            pushed = true
        }
        let client: OAuthClient? = if let id = values["client_id"], ClientRules.isValidId(id) { try await store.client(id: id) } else { nil }
        let request = try AuthorizationRequestRules.check(values, client: client, pushed: pushed)
        // The rules refuse a request without its client, so there is one here.
        guard let client else { throw AuthorizationRequestError.noRedirect("No such application.") }
        if let name = repeated.first {
            throw AuthorizationRequestError.redirect(.invalidRequest("the parameter '\(name.prefix(64))' is given more than once"), redirectURI: request.redirectURI, state: request.state)
        }
        return (request, client)
    }

    /// What `/authorize` does with a checked request.
    enum Decision {
        /// Show the login screen.
        case login(AuthorizationRequest, OAuthClient)
        /// Redirect the browser to this URL (a code from the session, or an error).
        case redirect(String)
    }

    /// The session's answer for `request`: a code straight away when the browser's session is
    /// live, fresh enough for `max_age` and no `prompt` other than `none`; `login_required` for
    /// `prompt=none` without one; otherwise the login screen.
    func decide(_ request: AuthorizationRequest, client: OAuthClient, sessionSecret: String?) async throws -> Decision {
        let now = clock.now
        // The phone's confirm is the consent and the phone that scans picks the account, so
        // prompt=consent and prompt=select_account ask for a scan like prompt=login.
        let session = try await session(secret: sessionSecret)
        let asksTheUser = request.prompt.contains { $0 != .none }
        if !asksTheUser, let session, session.satisfies(maxAge: request.maxAge, at: now) {
            // A refresh token lets the app act for weeks: that is asked on the phone, never
            // granted silently by a session (OpenID Connect Core §11).
            guard request.scopes.contains(Scope.offlineAccess) else {
                return .redirect(try await issueCode(for: request, accountId: session.accountId, session: session))
            }
            if request.prompt.contains(.none) {
                return .redirect(errorRedirect(OAuthError(.consentRequired, "offline_access needs the user's approval on the phone"), redirectURI: request.redirectURI, state: request.state))
            }
            return .login(request, client)
        }
        if request.prompt.contains(.none) {
            return .redirect(errorRedirect(OAuthError(.loginRequired, "the user is not signed in here"), redirectURI: request.redirectURI, state: request.state))
        }
        return .login(request, client)
    }

    /// The live session behind a cookie secret, if any.
    func session(secret: String?) async throws -> BrowserSession? {
        guard let secret, secret.hasPrefix(Self.sessionPrefix), secret.utf8.count <= 128,
              let session = try await store.browserSession(secretHash: Secrets.hash(secret)), session.isLive(at: clock.now)
        else { return nil }
        return session
    }

    static let sessionPrefix = "qrl_ss_"

    /// Starts a browser session for `accountId`, signed in by `amr`. A QR login's browser is
    /// already a device of the account (`deviceId`, its key); a browser signed in by password or
    /// code gets a device record of its own (`browser-…`, with no key: it holds no token), so the
    /// user sees every signed-in browser among their devices and removing it ends the session.
    /// Returns the session and the cookie's secret.
    func startSession(accountId: String, deviceId: String?, amr: [String], client: ClientInfo? = nil, authTime: Date? = nil) async throws -> (BrowserSession, String) {
        let now = clock.now
        let secret = Secrets.secret(prefix: Self.sessionPrefix)
        let id = Secrets.publicId()
        var device = deviceId
        if device == nil {
            let browser = Device(
                id: "browser-" + id, accountId: accountId, type: .web, name: Self.browserName(client?.userAgent ?? ""), publicKeyJWK: "",
                createdAt: now, lastSeenAt: now, lastIP: client?.ip ?? ""
            )
            try await store.upsertDevice(browser)
            device = browser.id
        }
        let session = BrowserSession(
            id: id, secretHash: Secrets.hash(secret), accountId: accountId, deviceId: device, authTime: authTime ?? now, amr: amr,
            createdAt: now, expiresAt: now.addingTimeInterval(Self.sessionTTL)
        )
        try await store.insertBrowserSession(session)
        return (session, secret)
    }

    /// A short name for a browser from its user agent, for the devices list.
    static func browserName(_ userAgent: String) -> String {
        let kinds = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        let kind = kinds.first { userAgent.contains($0.0) }?.1 ?? "Web browser"
        let systems = [("Android", "Android"), ("iPhone", "iPhone"), ("Mac OS X", "macOS"), ("Windows", "Windows"), ("Linux", "Linux")]
        let system = systems.first { userAgent.contains($0.0) }.map { " on " + $0.1 } ?? ""
        return kind + system + " (signed in to an app)"
    }

    /// A new code for `request`, and the redirect that carries it with `state` and `iss`.
    func issueCode(for request: AuthorizationRequest, accountId: String, session: BrowserSession) async throws -> String {
        let now = clock.now
        let code = Secrets.secret(prefix: Self.codePrefix)
        try await store.insertAuthorizationCode(AuthorizationCode(
            hash: Secrets.hash(code), clientId: request.clientId, accountId: accountId, redirectURI: request.redirectURI,
            scopes: request.scopes, nonce: request.nonce, codeChallenge: request.codeChallenge, dpopJKT: request.dpopJKT,
            authTime: session.authTime, amr: session.amr, sessionId: session.id, createdAt: now, expiresAt: now.addingTimeInterval(Self.codeTTL)
        ))
        var parameters = [("code", code)]
        if let state = request.state { parameters.append(("state", state)) }
        parameters.append(("iss", issuer))
        return Self.url(request.redirectURI, adding: parameters)
    }

    static let codePrefix = "qrl_ac_"

    /// The redirect that reports `error` to the app (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
    func errorRedirect(_ error: OAuthError, redirectURI: String, state: String?) -> String {
        var parameters = [("error", error.code.rawValue), ("error_description", error.description)]
        if let state { parameters.append(("state", state)) }
        parameters.append(("iss", issuer))
        return Self.url(redirectURI, adding: parameters)
    }

    /// `base` with `parameters` added to its query.
    static func url(_ base: String, adding parameters: [(String, String)]) -> String {
        let query = parameters.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&")
        return base + (base.contains("?") ? "&" : "?") + query
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    // MARK: Pushed authorization requests (RFC 9126)

    /// How long a pushed request may be used: long enough for a QR login on its login screen.
    static let pushedRequestTTL: TimeInterval = 600

    /// Checks and keeps a request pushed by `client` (already authenticated). A DPoP proof at
    /// this endpoint binds the code like `dpop_jkt` (RFC 9449 §10.1).
    /// - Throws: ``OAuthError`` (the pushing client hears of every mistake directly).
    func push(_ parameters: [String: String], client: OAuthClient, proof: DPoPProof?) async throws -> PushedRequest {
        try oauth.checkProofRules(proof, client: client)
        var parameters = parameters
        parameters["client_secret"] = nil
        if let bodyId = parameters["client_id"], bodyId != client.id { throw OAuthError.invalidRequest("client_id differs from the authenticated client") }
        parameters["client_id"] = client.id
        if let proof {
            if let jkt = parameters["dpop_jkt"], jkt != proof.thumbprint { throw OAuthError.invalidRequest("dpop_jkt differs from the DPoP proof's key") }
            parameters["dpop_jkt"] = proof.thumbprint
        }
        do {
            _ = try AuthorizationRequestRules.check(parameters, client: client, pushed: true)
        } catch {
            switch error {
            case .noRedirect(let message): throw OAuthError.invalidRequest(message)
            case .redirect(let oauthError, _, _): throw oauthError
            }
        }
        let query = parameters.sorted { $0.key < $1.key }.map { "\(Self.formEncode($0.key))=\(Self.formEncode($0.value))" }.joined(separator: "&")
        guard query.utf8.count <= 8 * 1024 else { throw OAuthError.invalidRequest("the request is too long") }
        let request = PushedRequest(
            requestURI: "urn:ietf:params:oauth:request_uri:" + Secrets.publicId(), clientId: client.id, query: query,
            expiresAt: clock.now.addingTimeInterval(Self.pushedRequestTTL)
        )
        try await store.insertPushedRequest(request)
        return request
    }

    // MARK: Finishing a login on the login screen

    /// The password fallback: checks the password, starts a session, and returns the redirect.
    /// - Throws: ``QRLoginError/invalidCredentials``; ``AuthorizationRequestError``.
    func finishWithPassword(query: String, username: String, password: String, client: ClientInfo) async throws -> (redirect: String, sessionSecret: String) {
        let (request, _) = try await check(query: query)
        guard username.utf8.count <= 256, password.utf8.count <= Validate.maxPasswordLength else { throw QRLoginError.invalidCredentials }
        let account = try await store.account(username: username)
        let ok = try await login.passwords.verify(password, hash: account?.passwordHash ?? login.passwords.dummyHash)
        guard let account, ok else { throw QRLoginError.invalidCredentials }
        let (session, secret) = try await startSession(accountId: account.id, deviceId: nil, amr: ["pwd"], client: client)
        return (try await issueCode(for: request, accountId: account.id, session: session), secret)
    }

    /// The one-time-code fallback: checks the code sent to `phone`, starts a session (`amr` otp).
    /// - Throws: ``QRLoginError/invalidCode``, ``QRLoginError/tooManyAttempts``; ``AuthorizationRequestError``.
    func finishWithCode(query: String, phone: String, code: String, client: ClientInfo) async throws -> (redirect: String, sessionSecret: String) {
        let (request, _) = try await check(query: query)
        let account = try await login.checkCode(phone: phone, code: code)
        let (session, secret) = try await startSession(accountId: account.id, deviceId: nil, amr: ["otp"], client: client)
        return (try await issueCode(for: request, accountId: account.id, session: session), secret)
    }

    /// The QR login finished: the browser proves the token its login request `loginRequestId`
    /// just handed it. The request must be this app's login screen (the phone was shown this app
    /// and these scopes), the token the one it handed out, fresh, and unused: it is revoked here,
    /// so it buys one redirect and nothing else.
    /// - Throws: ``QRLoginError/invalidToken`` for any other token; ``AuthorizationRequestError``.
    func finishWithQR(query: String, loginRequestId: String, identity: Identity) async throws -> (redirect: String, sessionSecret: String) {
        let (request, _) = try await check(query: query)
        let token = identity.token
        guard token.origin == .qr, clock.now.timeIntervalSince(token.createdAt) <= Self.freshLogin,
              let id = try? Validate.identifier(loginRequestId), let login = try await store.loginRequest(id: id),
              login.tokenId == token.id, login.accountId == identity.account.id, let app = login.app, app.clientId == request.clientId,
              request.scopes.allSatisfy(app.scopes.contains)
        else { throw QRLoginError.invalidToken }
        guard try await store.revokeToken(id: token.id, at: clock.now) else { throw QRLoginError.invalidToken }
        let (session, secret) = try await startSession(accountId: identity.account.id, deviceId: identity.device.id, amr: ["qr"], authTime: token.createdAt)
        return (try await issueCode(for: request, accountId: identity.account.id, session: session), secret)
    }

    // MARK: Token endpoint

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3): checks the code, PKCE, the redirect URI
    /// and `dpop_jkt`, and issues tokens with an ID token. A second use revokes what the first
    /// issued.
    func redeem(code: String, redirectURI: String?, verifier: String?, client: OAuthClient, proof: DPoPProof?) async throws -> (tokens: IssuedOAuthTokens, idToken: String) {
        try client.checkGrant(.authorizationCode)
        try oauth.checkProofRules(proof, client: client)
        guard code.hasPrefix(Self.codePrefix), code.utf8.count <= 128 else {
            throw OAuthError.invalidGrant("the code is invalid, expired or was issued to another client")
        }
        let now = clock.now
        let outcome = CodeOutcome()
        let decision = try await store.redeemAuthorizationCode(hash: Secrets.hash(code), at: now) { stored in
            try CodeRedemptionRules.decide(stored, clientId: client.id, redirectURI: redirectURI, verifier: verifier, proofJKT: proof?.thumbprint, now: now) {
                let familyId = Secrets.publicId()
                let minted = oauth.mint(scopes: stored.scopes, refreshScopes: stored.scopes, proof: proof, familyId: familyId, now: now)
                outcome.issued = minted.issued
                outcome.code = stored
                let family = TokenFamily(
                    id: familyId, clientId: client.id, accountId: stored.accountId, scopes: stored.scopes,
                    refreshJKT: client.type == .public ? proof?.thumbprint : nil, origin: .authorizationCode, createdAt: now, expiresAt: minted.expiresAt
                )
                return IssuedGrant(family: family, tokens: minted.tokens)
            }
        }
        switch decision {
        case .issue?:
            guard let issued = outcome.issued, let stored = outcome.code, let account = try await store.account(id: stored.accountId) else {
                throw OAuthError.invalidGrant("the code is invalid")
            }
            var claims = IDTokenClaims(iss: issuer, sub: account.id, aud: client.id, issuedAt: now, lifetime: oauth.settings.idTokenTTL)
            claims.authTime = Int(stored.authTime.timeIntervalSince1970)
            claims.nonce = stored.nonce
            claims.amr = stored.amr
            claims.azp = client.id
            claims.sid = stored.sessionId
            claims.atHash = IDTokenClaims.atHash(for: issued.accessToken)
            Self.addProfileClaims(to: &claims, account: account, scopes: stored.scopes)
            return (issued, try await oauth.keyring.sign(claims, algorithm: client.idTokenAlgorithm))
        case .revokeIssued?:
            throw OAuthError.invalidGrant("the code was already used; the tokens issued for it are revoked")
        case nil:
            throw OAuthError.invalidGrant("the code is invalid, expired or was issued to another client")
        }
    }

    /// The claims of `profile` and `phone` (OpenID Connect Core §5.4).
    static func addProfileClaims(to claims: inout IDTokenClaims, account: Account, scopes: [String]) {
        if scopes.contains("profile") {
            claims.name = account.displayName
            claims.preferredUsername = account.username
        }
        if scopes.contains("phone"), let phone = account.phone {
            claims.phoneNumber = phone
            // The number is what the user registered; nothing records that it was proven.
            claims.phoneNumberVerified = false
        }
    }

    // MARK: RP-initiated logout

    /// What the end-session endpoint does (OpenID Connect RP-Initiated Logout 1.0 §2-§3).
    enum LogoutDecision {
        /// End this session (if any) now, then go to `redirect` (or show the signed-out page).
        case logOut(session: BrowserSession?, redirect: String?)
        /// Ask the user first: nothing proves the request comes from the app they signed in to.
        case confirm(session: BrowserSession, redirect: String?)
        /// Refuse with a page: never redirect to an unregistered URI.
        case refuse(String)
    }

    /// Decides a logout request. An `id_token_hint` this server signed (expired or not) for the
    /// browser's account, or no session at all, logs out at once; otherwise the user confirms.
    func decideLogout(idTokenHint: String?, clientId: String?, postLogoutRedirectURI: String?, state: String?, sessionSecret: String?) async throws -> LogoutDecision {
        var hint: IDTokenClaims?
        if let idTokenHint {
            guard let claims = await oauth.keyring.claimsOfOwnToken(idTokenHint) else { return .refuse("The id_token_hint is not an ID token from this server.") }
            hint = claims
        }
        if let clientId, let hint, hint.aud != clientId { return .refuse("client_id and id_token_hint name different applications.") }
        var redirect: String?
        if let uri = postLogoutRedirectURI {
            guard let id = hint?.aud ?? clientId, ClientRules.isValidId(id), let client = try await store.client(id: id) else {
                return .refuse("post_logout_redirect_uri needs id_token_hint or client_id to say which application it belongs to.")
            }
            guard client.postLogoutRedirectURIs.contains(uri) else { return .refuse("That post_logout_redirect_uri is not one \(client.name) registered.") }
            redirect = state.map { Self.url(uri, adding: [("state", $0)]) } ?? uri
        }
        guard let session = try await session(secret: sessionSecret) else { return .logOut(session: nil, redirect: redirect) }
        if let hint, hint.sub == session.accountId { return .logOut(session: session, redirect: redirect) }
        return .confirm(session: session, redirect: redirect)
    }

    /// Ends `session` now.
    func endSession(_ session: BrowserSession) async throws {
        _ = try await store.revokeBrowserSession(id: session.id, at: clock.now)
        // A password or code session's stand-in device goes with it (a QR login's browser device
        // stays: it is the browser's key, and the user removes it from the phone).
        if let device = session.deviceId, device.hasPrefix("browser-") {
            _ = try await store.removeDevice(id: device, accountId: session.accountId, at: clock.now)
        }
    }

    // MARK: UserInfo

    /// The UserInfo answer (Core §5.3) for an access token presented with `scheme`, and its
    /// DPoP proof for a DPoP-bound token.
    /// - Throws: ``UserInfoError``.
    func userInfo(scheme: String, token: String, proof: String?, method: String, path: String) async throws -> [String: String] {
        guard let key = OAuthTokenKey(token: token, prefix: OAuthService.accessTokenPrefix),
              let found = try await store.oauthToken(hash: key.hash, family: key.family), found.token.kind == .access,
              found.token.isActive(in: found.family, at: clock.now)
        else { throw UserInfoError.invalidToken("the access token is invalid, expired or revoked") }
        if let jkt = found.token.jkt {
            guard scheme == "dpop" else { throw UserInfoError.invalidToken("a DPoP-bound token must be sent with the DPoP scheme and a proof") }
            let verified: DPoPProof
            do {
                verified = try await login.verifier.verify(proof: proof, method: method, path: path, accessToken: token)
            } catch .storeUnavailable {
                // The replay cache could not answer: the proof is not at fault, the service is.
                throw QRLoginError.storeUnavailable
            } catch {
                throw UserInfoError.invalidProof(error.detail)
            }
            guard verified.thumbprint == jkt else { throw UserInfoError.invalidProof("the proof is not signed by the token's key") }
        } else if scheme != "bearer" {
            throw UserInfoError.invalidToken("this token is a Bearer token")
        }
        guard found.token.scopes.contains("openid") else { throw UserInfoError.insufficientScope("the token lacks the openid scope") }
        guard let account = try await store.account(id: found.family.accountId) else { throw UserInfoError.invalidToken("the account is gone") }
        var claims = IDTokenClaims(iss: issuer, sub: account.id, aud: found.family.clientId, issuedAt: clock.now, lifetime: 0)
        Self.addProfileClaims(to: &claims, account: account, scopes: found.token.scopes)
        var answer = ["sub": account.id]
        if let name = claims.name { answer["name"] = name }
        if let username = claims.preferredUsername { answer["preferred_username"] = username }
        if let phone = claims.phoneNumber { answer["phone_number"] = phone }
        return answer
    }
}

/// Why UserInfo refused a request (RFC 6750 §3.1, RFC 9449 §7.1).
enum UserInfoError: Error {
    case invalidToken(String)
    case invalidProof(String)
    case insufficientScope(String)
}

/// Carries what is minted inside a code's atomic redemption out of it (read after it returns).
private final class CodeOutcome: @unchecked Sendable {
    var issued: IssuedOAuthTokens?
    var code: AuthorizationCode?
}

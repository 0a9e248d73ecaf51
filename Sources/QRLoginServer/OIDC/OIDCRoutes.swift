import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QRLoginCore
import QRLoginOAuth

/// OpenID Connect sign-in: discovery, the authorization endpoint (whose login screen is the QR
/// page, with a password fallback), and UserInfo.
struct OIDCRoutes {
    let oidc: OIDCService
    let clients: ClientResolver
    let limiter: RateLimiter
    let assets: WebAssets

    static let discoveryPath = "/.well-known/openid-configuration"
    static let authorizePath = "/authorize"
    static let userInfoPath = "/oauth/userinfo"
    static let logoutPath = "/oauth/logout"

    func addRoutes(to router: Router<AppRequestContext>) {
        router.getAndHead(RouterPath(Self.discoveryPath)) { _, _ in discovery() }
        let web = router.group().add(middleware: SecurityHeadersMiddleware())
        web.get(RouterPath(Self.authorizePath)) { request, context in
            try await authorize(query: request.uri.query ?? "", request: request, context: context)
        }
        web.post(RouterPath(Self.authorizePath)) { request, context in
            // Core §3.1.2.1: the endpoint takes POST with form parameters too.
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024)
            return try await authorize(query: String(buffer: body), request: request, context: context)
        }
        web.post("authorize/password") { request, context in try await finishWithPassword(request, context: context) }
        web.post("authorize/code/start") { request, context in try await startCode(request, context: context) }
        web.post("authorize/code") { request, context in try await finishWithCode(request, context: context) }
        router.group("authorize")
            .add(middleware: DeviceAuthMiddleware(service: oidc.login, clients: clients))
            .group(context: AuthenticatedContext.self)
            .post("qr") { request, context in try await finishWithQR(request, context: context) }
        web.get(RouterPath(Self.logoutPath)) { request, _ in try await logout(parameters: request.uri.query ?? "", request: request, confirmed: false) }
        web.post(RouterPath(Self.logoutPath)) { request, _ in
            var request = request
            let body = String(buffer: try await request.collectBody(upTo: 16 * 1024))
            // The confirmation form posts `confirm` and `csrf` besides the logout parameters.
            let (values, _) = OIDCService.parameters(body)
            let confirmed = values["confirm"] == "yes" && checkedCSRF(values["csrf"], request: request)
            return try await logout(parameters: body, request: request, confirmed: confirmed)
        }
        router.getAndHead(RouterPath(Self.userInfoPath)) { request, context in await userInfo(request, logger: context.logger) }
        router.post(RouterPath(Self.userInfoPath)) { request, context in await userInfo(request, logger: context.logger) }
    }

    // MARK: Discovery

    /// OpenID Connect Discovery 1.0 §3, consistent with the RFC 8414 document.
    func discovery() -> Response {
        let issuer = oidc.issuer
        var writer = JSONWriter(capacity: 2048)
        writer.object {
            $0.field("authorization_endpoint", issuer + Self.authorizePath)
            $0.field("authorization_response_iss_parameter_supported", true)
            $0.field("claims_supported", ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "azp", "at_hash", "sid", "name", "preferred_username", "phone_number", "phone_number_verified"])
            $0.field("code_challenge_methods_supported", ["S256"])
            $0.field("device_authorization_endpoint", issuer + OAuthRoutes.deviceAuthorizationPath)
            $0.field("end_session_endpoint", issuer + Self.logoutPath)
            $0.field("dpop_signing_alg_values_supported", ["ES256"])
            $0.field("grant_types_supported", [GrantType.authorizationCode.rawValue, GrantType.deviceCode.rawValue, GrantType.refreshToken.rawValue])
            $0.field("id_token_signing_alg_values_supported", SigningAlgorithm.allCases.map(\.rawValue))
            $0.field("introspection_endpoint", issuer + OAuthRoutes.introspectionPath)
            $0.field("issuer", issuer)
            $0.field("jwks_uri", issuer + OAuthRoutes.jwksPath)
            $0.field("introspection_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post"])
            $0.field("prompt_values_supported", Prompt.allCases.map(\.rawValue))
            $0.field("pushed_authorization_request_endpoint", issuer + OAuthRoutes.parPath)
            $0.field("response_modes_supported", ["query"])
            $0.field("response_types_supported", ["code"])
            $0.field("request_uri_parameter_supported", false)
            $0.field("revocation_endpoint", issuer + OAuthRoutes.revocationPath)
            $0.field("revocation_endpoint_auth_methods_supported", ClientAuthMethod.allCases.map(\.rawValue))
            $0.field("scopes_supported", Scope.standard.map(\.name))
            $0.field("subject_types_supported", ["public"])
            $0.field("token_endpoint", issuer + OAuthRoutes.tokenPath)
            $0.field("token_endpoint_auth_methods_supported", ClientAuthMethod.allCases.map(\.rawValue))
            $0.field("userinfo_endpoint", issuer + Self.userInfoPath)
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "max-age=300"], body: .init(byteBuffer: writer.buffer))
    }

    // MARK: Authorization endpoint

    func authorize(query: String, request: Request, context: AppRequestContext) async throws -> Response {
        do {
            let (checked, client) = try await oidc.check(query: query)
            switch try await oidc.decide(checked, client: client, sessionSecret: cookie(Self.sessionCookie, in: request)) {
            case .redirect(let url):
                return Self.redirect(url)
            case .login(_, let client):
                let csrf = csrfToken(for: request)
                guard let page = assets.page("index.html", publicBaseURL: oidc.issuer, values: ["authorizeQuery": query, "csrf": csrf, "clientName": client.name]) else {
                    throw HTTPError(.internalServerError)
                }
                var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
                headers[.setCookie] = cookieHeader(Self.csrfCookie, csrf, sameSite: "Strict", maxAge: 3600)
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: page)))
            }
        } catch let error as AuthorizationRequestError {
            switch error {
            case .noRedirect(let message):
                context.logger.info("authorization request refused", metadata: ["qrlogin.reason": "\(message)"])
                return errorPage(message)
            case .redirect(let oauthError, let redirectURI, let state):
                return Self.redirect(oidc.errorRedirect(oauthError, redirectURI: redirectURI, state: state))
            }
        }
    }

    /// `POST /authorize/password` `{query, csrf, username, password}` → `{redirect}`.
    func finishWithPassword(_ request: Request, context: AppRequestContext) async throws -> Response {
        // The same per-IP limit as the password sign-in of the API: this is a password check too.
        try await limiter.check(.signIn, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: PasswordFinishBody.self, context: context)
        try checkCSRF(body.csrf, request: request)
        let client = clients.client(of: request, peer: context.remoteAddress)
        return try await finish(context: context) {
            try await oidc.finishWithPassword(query: body.query, username: body.username, password: body.password, client: client)
        }
    }

    /// `POST /authorize/code/start` `{csrf, phone}` → 202: sends a one-time code to the phone
    /// number (the same answer whether or not an account has it).
    func startCode(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await limiter.check(.code, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: CodeStartFinishBody.self, context: context)
        try checkCSRF(body.csrf, request: request)
        try await oidc.login.startCodeSignIn(phone: body.phone)
        return Response(status: .accepted, headers: [.cacheControl: "no-store"])
    }

    /// `POST /authorize/code` `{query, csrf, phone, code}` → `{redirect}`.
    func finishWithCode(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await limiter.check(.signIn, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: CodeFinishBody.self, context: context)
        try checkCSRF(body.csrf, request: request)
        let client = clients.client(of: request, peer: context.remoteAddress)
        return try await finish(context: context) { try await oidc.finishWithCode(query: body.query, phone: body.phone, code: body.code, client: client) }
    }

    /// `POST /authorize/qr` `{query, csrf}` with the browser's fresh QR-login token and proof → `{redirect}`.
    func finishWithQR(_ request: Request, context: AuthenticatedContext) async throws -> Response {
        let body = try await request.decode(as: QRFinishBody.self, context: context)
        try checkCSRF(body.csrf, request: request)
        return try await finish(context: context) { try await oidc.finishWithQR(query: body.query, loginRequestId: body.loginRequest, identity: context.identity) }
    }

    private func finish(context: some RequestContext, _ body: () async throws -> (redirect: String, sessionSecret: String)) async throws -> Response {
        let redirect: String
        let secret: String
        do {
            (redirect, secret) = try await body()
        } catch let error as AuthorizationRequestError {
            switch error {
            case .noRedirect(let message): throw QRLoginError.invalidInput(message)
            case .redirect(let oauthError, let redirectURI, let state): redirect = oidc.errorRedirect(oauthError, redirectURI: redirectURI, state: state); secret = ""
            }
        }
        var writer = JSONWriter()
        writer.object { $0.field("redirect", redirect) }
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
        if !secret.isEmpty { headers[.setCookie] = cookieHeader(Self.sessionCookie, secret, sameSite: "Lax", maxAge: Int(OIDCService.sessionTTL)) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: writer.buffer))
    }

    /// The browser's CSRF token: the one its cookie already holds, so that two open pages (two
    /// apps' login screens, or one and the sign-out page) keep working side by side; a new one
    /// for a browser that has none or a malformed one.
    private func csrfToken(for request: Request) -> String {
        if let existing = cookie(Self.csrfCookie, in: request), existing.utf8.count == 43, PKCE.isValidChallenge(existing) { return existing }
        return Secrets.secret(prefix: "")
    }

    private func checkCSRF(_ token: String, request: Request) throws {
        guard checkedCSRF(token, request: request) else {
            throw QRLoginError.invalidInput("the sign-in form is stale or was not sent by this site; reload the page")
        }
    }

    /// Whether `token` is the one in this browser's CSRF cookie (double submit: a page of
    /// another site can post the field but cannot send the SameSite=Strict cookie).
    private func checkedCSRF(_ token: String?, request: Request) -> Bool {
        guard let token, !token.isEmpty, let cookie = cookie(Self.csrfCookie, in: request) else { return false }
        return Secrets.constantTimeEquals(cookie, token)
    }

    // MARK: Logout

    /// The end-session endpoint: ends the browser's session and returns to the app's registered
    /// post-logout URI, after asking the user when nothing proves the app asked.
    func logout(parameters text: String, request: Request, confirmed: Bool) async throws -> Response {
        let (values, repeated) = OIDCService.parameters(text)
        guard repeated.isEmpty, text.utf8.count <= 16 * 1024 else { return page("Sign-out error", "The sign-out request is malformed.", status: .badRequest) }
        func value(_ name: String) -> String? { values[name].flatMap { $0.isEmpty ? nil : $0 } }
        let decision = try await oidc.decideLogout(
            idTokenHint: value("id_token_hint"), clientId: value("client_id"), postLogoutRedirectURI: value("post_logout_redirect_uri"),
            state: value("state"), sessionSecret: cookie(Self.sessionCookie, in: request)
        )
        switch decision {
        case .refuse(let message):
            return page("Sign-out error", message, status: .badRequest)
        case .confirm(let session, let redirect):
            guard confirmed else { return confirmLogoutPage(parameters: values, csrf: csrfToken(for: request)) }
            try await oidc.endSession(session)
            return signedOut(redirect: redirect, viaForm: true)
        case .logOut(let session, let redirect):
            if let session { try await oidc.endSession(session) }
            return signedOut(redirect: redirect, viaForm: false)
        }
    }

    /// Clears the cookie and returns to the app, or says so. After a form post a redirect to the
    /// app would be blocked by the page's `form-action 'self'`, so the page links to it instead.
    private func signedOut(redirect: String?, viaForm: Bool) -> Response {
        var response: Response
        if let redirect, !viaForm {
            response = Self.redirect(redirect)
        } else {
            let link = redirect.map { #"<p><a class="button" data-testid="return-to-app" href="\#(WebAssets.escapeHTML($0))">Return to the app</a></p>"# } ?? ""
            response = page("Signed out", "You are signed out of QRLogin in this browser.", status: .ok, extra: link)
        }
        response.headers.append(HTTPField(name: .setCookie, value: "\(cookieName(Self.sessionCookie))=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "")))
        return response
    }

    private func confirmLogoutPage(parameters: [String: String], csrf: String) -> Response {
        let hidden = parameters.filter { ["client_id", "post_logout_redirect_uri", "state", "id_token_hint"].contains($0.key) }
            .sorted { $0.key < $1.key }
            .map { #"<input type="hidden" name="\#(WebAssets.escapeHTML($0.key))" value="\#(WebAssets.escapeHTML($0.value))">"# }.joined()
        let form = """
        <form method="post" action="\(Self.logoutPath)">\(hidden)<input type="hidden" name="csrf" value="\(csrf)">\
        <button type="submit" name="confirm" value="yes" data-testid="confirm-logout">Sign out</button></form>
        """
        var response = page("Sign out?", "An application asks to sign you out of QRLogin in this browser.", status: .ok, extra: form)
        response.headers[.setCookie] = cookieHeader(Self.csrfCookie, csrf, sameSite: "Strict", maxAge: 3600)
        return response
    }

    // MARK: UserInfo

    func userInfo(_ request: Request, logger: Logger) async -> Response {
        let scheme: String
        let token: String
        if let header = request.headers[.authorization], let space = header.firstIndex(of: " ") {
            scheme = header[..<space].lowercased()
            token = header[header.index(after: space)...].trimmingCharacters(in: .whitespaces)
        } else {
            return challenge(status: .unauthorized, error: nil, description: nil)
        }
        do {
            let proofs = request.headers[values: .dpop]
            guard proofs.count <= 1 else { throw UserInfoError.invalidProof("send exactly one DPoP header") }
            let claims = try await oidc.userInfo(scheme: scheme, token: token, proof: proofs.first, method: request.method.rawValue, path: request.uri.path)
            var writer = JSONWriter()
            writer.object { object in
                if let name = claims["name"] { object.field("name", name) }
                if let phone = claims["phone_number"] {
                    object.field("phone_number", phone)
                    object.field("phone_number_verified", false)
                }
                if let username = claims["preferred_username"] { object.field("preferred_username", username) }
                object.field("sub", claims["sub"] ?? "")
            }
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: writer.buffer))
        } catch UserInfoError.invalidToken(let description) {
            return challenge(status: .unauthorized, error: "invalid_token", description: description)
        } catch UserInfoError.invalidProof(let description) {
            return challenge(status: .unauthorized, error: "invalid_dpop_proof", description: description)
        } catch UserInfoError.insufficientScope(let description) {
            return challenge(status: .forbidden, error: "insufficient_scope", description: description)
        } catch {
            // A database that cannot be reached is 503 with a retry, not the token's fault.
            return OAuthRoutes.errorResponse(for: error, logger: logger)
        }
    }

    /// RFC 6750 §3 and RFC 9449 §7.1 challenges for both schemes.
    private func challenge(status: HTTPResponse.Status, error: String?, description: String?) -> Response {
        var parameters = ""
        if let error { parameters += #", error="\#(error)""# }
        if let description { parameters += #", error_description="\#(description.replacingOccurrences(of: "\"", with: "'"))""# }
        var headers: HTTPFields = [.cacheControl: "no-store"]
        headers.append(HTTPField(name: .wwwAuthenticate, value: #"DPoP algs="ES256""# + parameters))
        headers.append(HTTPField(name: .wwwAuthenticate, value: #"Bearer realm="qrlogin""# + parameters))
        return Response(status: status, headers: headers)
    }

    // MARK: Helpers

    /// The session cookie: `__Host-` prefixed and `Secure` over HTTPS.
    var sessionCookie: String { Self.sessionCookie }
    static let sessionCookie = "qrlogin_session"
    static let csrfCookie = "qrlogin_csrf"

    private var secure: Bool { oidc.issuer.lowercased().hasPrefix("https://") }

    private func cookieName(_ base: String) -> String { secure ? "__Host-" + base : base }

    private func cookieHeader(_ base: String, _ value: String, sameSite: String, maxAge: Int) -> String {
        "\(cookieName(base))=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=\(sameSite)" + (secure ? "; Secure" : "")
    }

    private func cookie(_ base: String, in request: Request) -> String? {
        let name = cookieName(base)
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    static func redirect(_ url: String) -> Response {
        Response(status: .seeOther, headers: [.location: url, .cacheControl: "no-store"])
    }

    /// The page shown when the app cannot be told (unknown client or redirect URI).
    private func errorPage(_ message: String) -> Response {
        page("This sign-in cannot go on", message, status: .badRequest, testId: "authorize-error",
             extra: #"<p class="muted">Go back to the app you came from and try again. If it keeps happening, tell the app's owner.</p>"#)
    }

    /// A small server-rendered page: `title`, `message` (escaped) and trusted `extra` HTML.
    private func page(_ title: String, _ message: String, status: HTTPResponse.Status, testId: String = "oidc-page", extra: String = "") -> Response {
        let html = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(WebAssets.escapeHTML(title)) · QRLogin</title><link rel="stylesheet" href="/assets/style.css"></head>
        <body><main><section class="card" data-testid="\(testId)"><h1>\(WebAssets.escapeHTML(title))</h1>
        <p>\(WebAssets.escapeHTML(message))</p>\(extra)</section></main></body></html>
        """
        return Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

struct PasswordFinishBody: Decodable {
    var query: String
    var csrf: String
    var username: String
    var password: String
}

struct CodeStartFinishBody: Decodable {
    var csrf: String
    var phone: String
}

struct CodeFinishBody: Decodable {
    var query: String
    var csrf: String
    var phone: String
    var code: String
}

struct QRFinishBody: Decodable {
    var query: String
    var csrf: String
    /// The login request whose token the browser just collected.
    var loginRequest: String
}

import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QRLoginCore
import QRLoginOAuth

/// The OAuth 2.0 endpoints: metadata (RFC 8414), device authorization (RFC 8628), token
/// (RFC 6749, RFC 8628, RFC 9449), introspection (RFC 7662) and revocation (RFC 7009). They
/// speak RFC 6749 §5.2 error JSON, not the problem JSON of the v1 API.
struct OAuthRoutes {
    let oauth: OAuthService
    let oidc: OIDCService
    let clients: ClientResolver
    let limiter: RateLimiter

    static let metadataPath = "/.well-known/oauth-authorization-server"
    static let deviceAuthorizationPath = "/oauth/device_authorization"
    static let tokenPath = "/oauth/token"
    static let introspectionPath = "/oauth/introspect"
    static let revocationPath = "/oauth/revoke"
    static let jwksPath = "/oauth/jwks"
    static let parPath = "/oauth/par"
    /// The endpoints clients and resource servers call on every login, refresh and API call,
    /// answered from the connection's channel handler (``DirectRoutes``).
    static let directPaths: Set<String> = [tokenPath, introspectionPath, revocationPath]

    func addRoutes(to router: Router<AppRequestContext>) {
        router.getAndHead(RouterPath(Self.metadataPath)) { _, _ in metadata() }
        router.getAndHead(RouterPath(Self.jwksPath)) { _, context in try await jwks(context: context) }
        router.post(RouterPath(Self.deviceAuthorizationPath)) { request, context in
            await answer(request, context: context) { try await deviceAuthorization(request, context: context) }
        }
        router.post(RouterPath(Self.tokenPath)) { request, context in
            await answer(request, context: context) { try await token(request, context: context) }
        }
        router.post(RouterPath(Self.parPath)) { request, context in
            await answer(request, context: context) { try await pushAuthorizationRequest(request, context: context) }
        }
        router.post(RouterPath(Self.introspectionPath)) { request, context in
            await answer(request, context: context) { try await introspect(request, context: context) }
        }
        router.post(RouterPath(Self.revocationPath)) { request, context in
            await answer(request, context: context) { try await revoke(request, context: context) }
        }
    }

    // MARK: Metadata

    /// RFC 8414 §2, computed from the public URL; `issuer` is that URL exactly.
    func metadata() -> Response {
        let issuer = oauth.issuer
        var writer = JSONWriter(capacity: 1024)
        writer.object {
            $0.field("code_challenge_methods_supported", ["S256"])
            $0.field("device_authorization_endpoint", issuer + Self.deviceAuthorizationPath)
            $0.field("dpop_signing_alg_values_supported", ["ES256"])
            $0.field("authorization_endpoint", issuer + OIDCRoutes.authorizePath)
            $0.field("authorization_response_iss_parameter_supported", true)
            $0.field("grant_types_supported", [GrantType.authorizationCode.rawValue, GrantType.deviceCode.rawValue, GrantType.refreshToken.rawValue])
            $0.field("introspection_endpoint", issuer + Self.introspectionPath)
            $0.field("introspection_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post"])
            $0.field("issuer", issuer)
            $0.field("jwks_uri", issuer + Self.jwksPath)
            $0.field("pushed_authorization_request_endpoint", issuer + Self.parPath)
            $0.field("response_types_supported", ["code"])
            $0.field("revocation_endpoint", issuer + Self.revocationPath)
            $0.field("revocation_endpoint_auth_methods_supported", ClientAuthMethod.allCases.map(\.rawValue))
            $0.field("scopes_supported", Scope.standard.map(\.name))
            $0.field("token_endpoint", issuer + Self.tokenPath)
            $0.field("token_endpoint_auth_methods_supported", ClientAuthMethod.allCases.map(\.rawValue))
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "max-age=300"], body: .init(byteBuffer: writer.buffer))
    }

    /// The public keys that check ID tokens (RFC 7517 JWK Set), cacheable for a minute: a relying
    /// party that meets an unknown `kid` (a key rotated in since) fetches the set again.
    func jwks(context: AppRequestContext) async throws -> Response {
        let keys = try await oauth.keyring.jwks()
        var writer = JSONWriter(capacity: 2048)
        writer.object {
            $0.field("keys", array: keys) { writer, key in
                writer.field("alg", key.alg)
                writer.field("crv", key.crv)
                writer.field("e", key.e)
                writer.field("kid", key.kid)
                writer.field("kty", key.kty)
                writer.field("n", key.n)
                writer.field("use", key.use)
                writer.field("x", key.x)
                writer.field("y", key.y)
            }
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "max-age=60"], body: .init(byteBuffer: writer.buffer))
    }

    // MARK: Device authorization

    func deviceAuthorization(_ request: Request, context: AppRequestContext) async throws -> Response {
        let info = clients.client(of: request, peer: context.remoteAddress)
        try await limiter.check(.deviceAuthorization, ip: info.ip)
        let form = try await FormBody.read(request, context: context)
        let client = try await authenticateClient(request, form: form)
        let proof = try await proofIfAny(request)
        let (login, deviceCode) = try await oauth.authorizeDevice(client: client, scope: form["scope"], proof: proof, info: info)
        context.logger.info("device authorization started", metadata: ["qrlogin.request.id": "\(login.id)", "qrlogin.client.id": "\(client.id)"])
        let code = UserCode.display(login.deviceGrant?.userCode ?? "")
        return json {
            $0.field("device_code", deviceCode)
            $0.field("expires_in", Int(login.expiresAt.timeIntervalSince(login.createdAt)))
            $0.field("interval", login.deviceGrant?.interval ?? oauth.settings.deviceInterval)
            $0.field("user_code", code)
            $0.field("verification_uri", oauth.issuer + "/device")
            $0.field("verification_uri_complete", oauth.issuer + "/q/" + login.id)
        }
    }

    // MARK: Token

    func token(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, context: context)
        let grantType = try form.require("grant_type")
        let client = try await authenticateClient(request, form: form)
        let grant = GrantType(rawValue: grantType)
        // A refresh records its proof in the store's refresh transaction; the rest record it now.
        let unrecorded = grant == .refreshToken ? try unrecordedProofIfAny(request) : nil
        let proof = grant == .refreshToken ? unrecorded?.proof : try await proofIfAny(request)
        let issued: IssuedOAuthTokens
        var idToken: String?
        switch grant {
        case .deviceCode?:
            issued = try await oauth.redeemDeviceCode(try form.require("device_code"), client: client, proof: proof)
        case .refreshToken?:
            issued = try await oauth.refresh(Result { () throws(OAuthError) in try form.require("refresh_token") }, scope: form["scope"], client: client, proof: unrecorded)
        case .authorizationCode?:
            (issued, idToken) = try await oidc.redeem(
                code: try form.require("code"), redirectURI: form["redirect_uri"], verifier: form["code_verifier"], client: client, proof: proof
            )
        case nil:
            throw OAuthError(.unsupportedGrantType, "grant_type must be authorization_code, \(GrantType.deviceCode.rawValue) or refresh_token")
        }
        context.logger.info("tokens issued", metadata: ["qrlogin.client.id": "\(client.id)", "qrlogin.grant_type": "\(grantType)"])
        return json {
            $0.field("access_token", issued.accessToken)
            $0.field("expires_in", issued.expiresIn)
            $0.field("id_token", idToken)
            $0.field("refresh_token", issued.refreshToken)
            $0.field("scope", Scope.format(issued.scopes))
            $0.field("token_type", issued.tokenType)
        }
    }

    // MARK: Pushed authorization requests

    /// RFC 9126 §2: the client pushes its authorization request and gets a `request_uri`.
    func pushAuthorizationRequest(_ request: Request, context: AppRequestContext) async throws -> Response {
        // Each push is stored for ten minutes: the same per-IP limit as the device authorization.
        try await limiter.check(.deviceAuthorization, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let form = try await FormBody.read(request, context: context)
        let client = try await authenticateClient(request, form: form)
        let proof = try await proofIfAny(request)
        let pushed = try await oidc.push(form.all, client: client, proof: proof)
        var response = json {
            $0.field("expires_in", Int(OIDCService.pushedRequestTTL))
            $0.field("request_uri", pushed.requestURI)
        }
        response.status = .created
        return response
    }

    // MARK: Introspection and revocation

    func introspect(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, context: context)
        let caller = try await authenticateClient(request, form: form)
        // RFC 7662 §2.1: the caller must be authorised; a public client proves nothing.
        guard caller.type == .confidential else { throw OAuthError.invalidClient("introspection needs a confidential client") }
        let token = try form.require("token")
        guard let found = try await oauth.introspect(token, caller: caller) else {
            return json { $0.field("active", false) }
        }
        let (record, family) = (found.token, found.family)
        return json {
            $0.field("active", true)
            $0.field("client_id", family.clientId)
            if let jkt = record.jkt { $0.field("cnf", object: { $0.field("jkt", jkt) }) }
            $0.field("exp", Int(record.expiresAt.timeIntervalSince1970))
            $0.field("iat", Int(record.createdAt.timeIntervalSince1970))
            $0.field("iss", oauth.issuer)
            $0.field("scope", Scope.format(record.scopes))
            $0.field("sub", family.accountId)
            if record.kind == .access { $0.field("token_type", record.jkt == nil ? "Bearer" : "DPoP") }
            $0.field("username", found.username)
        }
    }

    func revoke(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, context: context)
        let caller = try await authenticateClient(request, form: form)
        let token = try form.require("token")
        try await oauth.revoke(token, caller: caller)
        return Response(status: .ok, headers: [.cacheControl: "no-store", .pragma: "no-cache", .contentLength: "0"])
    }

    // MARK: Client authentication and proofs

    /// The client by `client_secret_basic`, `client_secret_post` or (public) `client_id` alone.
    /// - Throws: `invalid_request` for two methods at once, `invalid_client` for bad credentials.
    // Inlined: a call of a nonisolated async function that is not inlined costs two trips
    // through the event loop's queue (BENCHMARKS.md, "The server on a core of its own").
    @inline(__always)
    func authenticateClient(_ request: Request, form: FormBody) async throws -> OAuthClient {
        try await oauth.authenticate(try Self.credentials(authorization: request.headers[.authorization], form: form))
    }

    static func credentials(authorization: String?, form: FormBody) throws(OAuthError) -> ClientCredentials {
        if let authorization {
            // Over bytes, as FormBody: Foundation's trimming and decoding bridge through NSString.
            let utf8 = authorization.utf8
            let scheme = utf8.prefix { $0 != UInt8(ascii: " ") }
            guard FormBody.equalsIgnoringASCIICase(scheme, "basic") else {
                throw OAuthError.invalidClient("client authentication here is HTTP Basic, client_secret_post or client_id alone")
            }
            let encoded = utf8[scheme.endIndex...].trimmingSpaces
            // RFC 6749 §2.3.1: id and secret are form-encoded, then joined by ':' and base64'd.
            guard let decoded = Data(base64Encoded: String(Substring(encoded))).flatMap({ String(validating: $0, as: UTF8.self) }),
                  let colon = decoded.firstIndex(of: ":"),
                  let id = FormBody.decode(decoded[..<colon]), let secret = FormBody.decode(decoded[decoded.index(after: colon)...])
            else { throw OAuthError.invalidClient("malformed HTTP Basic credentials") }
            guard form["client_secret"] == nil else { throw OAuthError.invalidRequest("use one client authentication method, not two") }
            if let bodyId = form["client_id"], bodyId != id { throw OAuthError.invalidRequest("client_id differs from the Basic credentials") }
            // A public client sending Basic with an empty password sends no secret.
            return ClientCredentials(clientId: id, secret: secret.isEmpty ? nil : secret, viaBasic: true)
        }
        guard let id = form["client_id"] else { throw OAuthError.invalidClient("client authentication is required") }
        return ClientCredentials(clientId: id, secret: form["client_secret"], viaBasic: false)
    }

    /// The request's DPoP proof, verified and recorded against replay, if it has one (RFC 9449
    /// §4.3: at most one).
    func proofIfAny(_ request: Request) async throws -> DPoPProof? {
        guard let (proof, record) = try unrecordedProofIfAny(request) else { return nil }
        do { try await oauth.login.verifier.record(record) } catch { throw OAuthService.proofRefusal(error) }
        return proof
    }

    /// The request's DPoP proof, verified but not yet recorded against replay, if it has one:
    /// the caller must record it before it acts on it.
    func unrecordedProofIfAny(_ request: Request) throws -> (proof: DPoPProof, record: ProofRecord)? {
        let headers = request.headers[values: .dpop]
        guard !headers.isEmpty else { return nil }
        guard headers.count == 1 else { throw OAuthError(.invalidDPoPProof, "send exactly one DPoP header") }
        do {
            return try oauth.login.verifier.verifyUnrecorded(proof: headers[0], method: request.method.rawValue, path: request.uri.path, accessToken: nil)
        } catch {
            throw OAuthService.proofRefusal(error)
        }
    }

    // MARK: Answers

    /// A 200 JSON answer that no cache may keep (RFC 6749 §5.1).
    func json(_ body: (inout JSONWriter) -> Void) -> Response {
        var writer = JSONWriter()
        writer.object(body)
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store", .pragma: "no-cache"],
            body: .init(byteBuffer: writer.buffer)
        )
    }

    /// Runs `body`, turning every error into RFC 6749 §5.2 JSON, and adds the current DPoP
    /// nonce to the answer when nonces are on.
    func answer(_ request: Request, context: AppRequestContext, _ body: () async throws -> Response) async -> Response {
        var response: Response
        do {
            response = try await body()
        } catch {
            response = Self.errorResponse(for: error, logger: context.logger)
        }
        if let nonce = oauth.currentNonce { response.headers[.dpopNonce] = nonce }
        return response
    }

    /// The RFC 6749 §5.2 answer to `error`. A database that cannot be reached is 503 with a
    /// retry, as on the v1 API: neither the client's mistake nor a fault of this request
    /// (RFC 6749 §4.1.2.1 names the code).
    static func errorResponse(for error: any Error, logger: Logger) -> Response {
        var status: HTTPResponse.Status = .badRequest
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store", .pragma: "no-cache"]
        let code: String
        let description: String
        if let error = error as? OAuthError {
            (code, description) = (error.code.rawValue, error.description)
            if error.code == .invalidClient {
                status = .unauthorized
                // Required when the client tried Basic (RFC 6749 §5.2); harmless otherwise.
                headers[.wwwAuthenticate] = #"Basic realm="qrlogin""#
            }
        } else if Self.isStoreOutage(error, logger: logger) {
            (status, code, description) = (.serviceUnavailable, "temporarily_unavailable", "The service cannot reach its database; retry shortly.")
            headers[.retryAfter] = "1"
        } else if case QRLoginError.rateLimited(let seconds) = error {
            (status, code, description) = (.tooManyRequests, "invalid_request", "too many requests; retry in \(seconds) s")
            headers[.retryAfter] = String(seconds)
        } else if let error = error as? QRLoginError {
            (code, description) = ("invalid_request", error.detail)
        } else {
            logger.error("OAuth request failed", metadata: ["qrlogin.error": "\(String(reflecting: error))"])
            (status, code, description) = (.internalServerError, "server_error", "The server failed to handle the request.")
        }
        var writer = JSONWriter()
        writer.object {
            $0.field("error", code)
            $0.field("error_description", description)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: writer.buffer))
    }

    /// Whether `error` says the database cannot be reached (logged when it comes from a store).
    private static func isStoreOutage(_ error: any Error, logger: Logger) -> Bool {
        if case QRLoginError.storeUnavailable = error { return true }
        guard let error = error as? any StoreUnavailableError, error.isUnavailable else { return false }
        logger.warning("store unavailable", metadata: ["qrlogin.error": "\(error)"])
        return true
    }
}

extension HTTPField.Name {
    /// `DPoP-Nonce` (RFC 9449 §8).
    static var dpopNonce: Self { .init("DPoP-Nonce")! }
    /// `Pragma`, for the `no-cache` RFC 6749 §5.1 asks for.
    static var pragma: Self { .init("Pragma")! }
}

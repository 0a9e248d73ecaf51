import Foundation
import QRLoginCore
import QRLoginOAuth

/// How a client authenticated at an OAuth endpoint.
struct ClientCredentials: Sendable {
    /// `client_id` (from the body or the Basic header).
    var clientId: String
    /// The secret, if one was given.
    var secret: String?
    /// Whether the credentials came in an `Authorization: Basic` header (a failure is then a 401
    /// with `WWW-Authenticate: Basic`, RFC 6749 §5.2).
    var viaBasic: Bool
}

/// Tokens just issued at the token endpoint; the secrets are returned once and never stored.
struct IssuedOAuthTokens: Sendable {
    var accessToken: String
    var tokenType: String
    var expiresIn: Int
    var scopes: [String]
    var refreshToken: String?
}

/// What introspection reports of a token (RFC 7662 §2.2).
struct Introspection: Sendable {
    var lookup: OAuthTokenLookup?
}

/// The OAuth 2.0 authorization server: clients, the device grant mapped onto login requests,
/// the token endpoint, introspection and revocation. No HTTP in it; every client mistake is an
/// ``OAuthError``.
struct OAuthService: Sendable {
    /// Prefix of device codes (they are the poll secrets of device-grant login requests).
    static let deviceCodePrefix = "qrl_dc_"
    /// Prefix of OAuth access tokens.
    static let accessTokenPrefix = "qrl_oa_"
    /// Prefix of refresh tokens.
    static let refreshTokenPrefix = "qrl_rt_"

    let login: LoginService
    let settings: OAuthSettings
    let issuer: String
    let nonces: DPoPNonces?
    /// The keys that sign ID tokens.
    let keyring: Keyring

    var store: any Store { login.store }
    var clock: any NowClock { login.clock }

    // MARK: Clients

    /// The client named by `credentials`, authenticated: a confidential client must give its
    /// secret, a public client must not give one.
    /// - Throws: `invalid_client` for an unknown client or wrong secret.
    // Inlined: a call of a nonisolated async function that is not inlined costs two trips
    // through the event loop's queue (BENCHMARKS.md, "The server on a core of its own").
    @inline(__always)
    func authenticate(_ credentials: ClientCredentials) async throws -> OAuthClient {
        guard ClientRules.isValidId(credentials.clientId), let client = try await store.client(id: credentials.clientId) else {
            throw OAuthError.invalidClient("unknown client or wrong credentials")
        }
        switch client.type {
        case .confidential:
            guard let secret = credentials.secret, client.secretMatches(secret) else {
                throw OAuthError.invalidClient("unknown client or wrong credentials")
            }
        case .public:
            guard credentials.secret == nil else { throw OAuthError.invalidClient("a public client has no secret") }
        }
        return client
    }

    /// Checks the DPoP rules common to the token and device endpoints: a client that requires
    /// DPoP sent a proof, and with nonces on, the proof carries a current one.
    /// - Throws: `invalid_dpop_proof`, `use_dpop_nonce`.
    func checkProofRules(_ proof: DPoPProof?, client: OAuthClient) throws(OAuthError) {
        if client.requireDPoP, proof == nil {
            throw OAuthError(.invalidDPoPProof, "this client must send a DPoP proof")
        }
        if let proof, let nonces, !nonces.isValid(proof.nonce, at: clock.now) {
            throw OAuthError(.useDPoPNonce, "the DPoP proof must carry the nonce in the DPoP-Nonce header")
        }
    }

    /// The nonce to send in `DPoP-Nonce` now, with nonces on.
    var currentNonce: String? { nonces?.current(at: clock.now) }

    // MARK: Device authorization (RFC 8628 §3.1)

    /// Starts a device grant: a login request bound to `client`, asking for `scopes`, bound to
    /// the proof's key when the device sent one.
    /// - Returns: the request and its device code (shown once, stored only hashed).
    func authorizeDevice(client: OAuthClient, scope: String?, proof: DPoPProof?, info: ClientInfo) async throws -> (request: LoginRequest, deviceCode: String) {
        try client.checkGrant(.deviceCode)
        let scopes = try Scope.parse(scope)
        try client.checkScopes(scopes)
        try checkProofRules(proof, client: client)
        let now = clock.now
        var userCode = UserCode.generate()
        // 20^8 codes: a clash with a live request is rare, but a clash would make /device
        // ambiguous, so draw again.
        while try await store.loginRequest(userCode: userCode, at: now) != nil { userCode = UserCode.generate() }
        let deviceCode = Secrets.secret(prefix: Self.deviceCodePrefix)
        let request = LoginRequest(
            id: Secrets.publicId(), pollSecretHash: Secrets.hash(deviceCode), pcKeyThumbprint: proof?.thumbprint ?? "",
            pcPublicKeyJWK: proof?.publicKeyJWK ?? "",
            requester: RequesterContext(type: .cli, name: client.name, ip: info.ip, userAgent: info.userAgent),
            createdAt: now, expiresAt: now.addingTimeInterval(settings.deviceCodeTTL),
            deviceGrant: DeviceGrant(clientId: client.id, scopes: scopes, userCode: userCode, interval: settings.deviceInterval)
        )
        try await store.insertLoginRequest(request)
        return (request, deviceCode)
    }

    // MARK: Token endpoint

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4): the device
    /// polls with its device code.
    /// - Throws: `authorization_pending`, `slow_down`, `access_denied`, `expired_token`,
    ///   `invalid_grant` (unknown, another client's, or already redeemed), `invalid_dpop_proof`
    ///   (a key-bound device code polled without a proof of its key).
    func redeemDeviceCode(_ deviceCode: String, client: OAuthClient, proof: DPoPProof?) async throws -> IssuedOAuthTokens {
        try client.checkGrant(.deviceCode)
        try checkProofRules(proof, client: client)
        guard deviceCode.hasPrefix(Self.deviceCodePrefix), deviceCode.utf8.count <= 128,
              let request = try await store.loginRequest(pollSecretHash: Secrets.hash(deviceCode)),
              let grant = request.deviceGrant, grant.clientId == client.id
        else { throw OAuthError.invalidGrant("the device code is invalid or was issued to another client") }
        if !request.pcKeyThumbprint.isEmpty, proof?.thumbprint != request.pcKeyThumbprint {
            throw OAuthError(.invalidDPoPProof, "this device code is bound to a DPoP key; prove possession of that key")
        }
        let now = clock.now
        let outcome = PollOutcome()
        let refreshJKT = client.type == .public ? proof?.thumbprint : nil
        _ = try await store.transitionLoginRequest(id: request.id) { stored in
            let poll = stored.pollDeviceGrant(at: now)
            outcome.poll = poll
            // Most polls are pending: tokens are minted only by the one that hands them out.
            guard poll == .issue, let accountId = stored.accountId else { return .none }
            let minted = mint(scopes: grant.scopes, refreshScopes: grant.scopes, proof: proof, familyId: Secrets.publicId(), now: now)
            outcome.issued = minted.issued
            let family = TokenFamily(
                id: minted.familyId, clientId: client.id, accountId: accountId, scopes: grant.scopes, refreshJKT: refreshJKT,
                origin: .deviceCode, createdAt: now, expiresAt: minted.expiresAt
            )
            return LoginSideEffects(issueGrant: IssuedGrant(family: family, tokens: minted.tokens))
        }
        switch outcome.poll {
        case .issue:
            guard let issued = outcome.issued else { throw OAuthError.invalidGrant("the device code was already used") }
            return issued
        case .pending: throw OAuthError(.authorizationPending, "the user has not approved the request yet")
        case .slowDown(let error): throw error
        case .denied: throw OAuthError(.accessDenied, "the user denied the request")
        case .expired: throw OAuthError(.expiredToken, "the device code has expired; start over")
        case .alreadyIssued, .notADeviceGrant, nil: throw OAuthError.invalidGrant("the device code was already used")
        }
    }

    /// `grant_type=refresh_token` (RFC 6749 §6): rotates the refresh token; a second use of one
    /// revokes its whole family. The request's DPoP proof, if any, is recorded against replay in
    /// the store's refresh transaction (a refused request records it too).
    // Inlined into the token route, as `introspect(_:caller:)` is into its own (see there).
    @inline(__always)
    func refresh(
        _ refreshToken: Result<String, OAuthError>, scope: String?, client: OAuthClient, proof: (proof: DPoPProof, record: ProofRecord)?
    ) async throws -> IssuedOAuthTokens {
        let (presented, requested, key): (String, [String], OAuthTokenKey)
        do {
            presented = try refreshToken.get()
            try client.checkGrant(.refreshToken)
            try checkProofRules(proof?.proof, client: client)
            requested = try Scope.parse(scope)
            guard presented.utf8.count <= 128, let found = OAuthTokenKey(token: presented, prefix: Self.refreshTokenPrefix) else {
                throw OAuthError.invalidGrant("the refresh token is invalid, expired or revoked")
            }
            key = found
        } catch {
            // As if the proof had been recorded when it was verified: a replay is the answer.
            if let record = proof?.record {
                do { try await login.verifier.record(record) } catch { throw Self.proofRefusal(error) }
            }
            throw error
        }
        let now = clock.now
        let outcome = RefreshOutcome()
        let proofJKT = proof?.proof.thumbprint
        let decision: RefreshDecision?
        do {
            decision = try await store.useRefreshToken(hash: key.hash, family: key.family, at: now, recording: proof?.record) { token, family in
                try RefreshPolicy.decide(
                    token: token, family: family, clientId: client.id, proofJKT: proofJKT, requestedScopes: requested, now: now
                ) { accessScopes, refreshScopes in
                    let minted = mint(
                        scopes: accessScopes, refreshScopes: refreshScopes, proof: proof?.proof, familyId: family.id, after: key.place, now: now
                    )
                    outcome.issued = minted.issued
                    return (minted.tokens, minted.expiresAt)
                }
            }
        } catch QRLoginError.replayedProof {
            login.verifier.refused(.replayedProof)
            throw Self.proofRefusal(.replayedProof)
        }
        switch decision {
        case .rotate?:
            guard let issued = outcome.issued else { throw OAuthError.invalidGrant("the refresh token is invalid") }
            return issued
        case .revokeFamily?:
            throw OAuthError.invalidGrant("the refresh token was already used; every token of this grant is now revoked")
        case nil:
            throw OAuthError.invalidGrant("the refresh token is invalid, expired or revoked")
        }
    }

    /// A refused proof's answer: `invalid_dpop_proof` (RFC 9449 §5), except for a replay cache
    /// that cannot answer, the service's fault and not the proof's (503).
    static func proofRefusal(_ error: QRLoginError) -> any Error {
        if case .storeUnavailable = error { return error }
        return OAuthError(.invalidDPoPProof, error.detail)
    }

    /// New access token (bound to the proof's key if there is one) and, with `offline_access`,
    /// a new refresh token of family `familyId`, at the places after `place` (the presented
    /// refresh token's; nil for a new family or a token that names no place).
    func mint(scopes: [String], refreshScopes: [String], proof: DPoPProof?, familyId: String, after place: Int? = nil, now: Date)
        -> (issued: IssuedOAuthTokens, tokens: [OAuthToken], familyId: String, expiresAt: Date)
    {
        let first = (place ?? -1) + 1
        // Two secrets of 32 bytes and two record ids of 16, from one call to the CSPRNG.
        let random = Secrets.randomBytes(96)
        let (access, accessKey) = OAuthTokenKey.make(prefix: Self.accessTokenPrefix, family: familyId, place: first, secret: random[0..<32])
        let accessExpiry = now.addingTimeInterval(settings.accessTokenTTL)
        var tokens = [OAuthToken(
            id: Base64URL.encode(random[64..<80]), kind: .access, hash: accessKey.hash, familyId: familyId, scopes: scopes,
            jkt: proof?.thumbprint, createdAt: now, expiresAt: accessExpiry
        )]
        var refresh: String?
        var expiresAt = accessExpiry
        if refreshScopes.contains(Scope.offlineAccess) {
            let (secret, refreshKey) = OAuthTokenKey.make(
                prefix: Self.refreshTokenPrefix, family: familyId, place: first + 1, secret: random[32..<64]
            )
            let refreshExpiry = now.addingTimeInterval(settings.refreshTokenTTL)
            tokens.append(OAuthToken(
                id: Base64URL.encode(random[80..<96]), kind: .refresh, hash: refreshKey.hash, familyId: familyId, scopes: refreshScopes,
                jkt: nil, createdAt: now, expiresAt: refreshExpiry
            ))
            refresh = secret
            expiresAt = max(expiresAt, refreshExpiry)
        }
        let issued = IssuedOAuthTokens(
            accessToken: access, tokenType: proof == nil ? "Bearer" : "DPoP", expiresIn: Int(settings.accessTokenTTL),
            scopes: scopes, refreshToken: refresh
        )
        return (issued, tokens, familyId, expiresAt)
    }

    // MARK: Introspection and revocation

    /// The token behind `token` as `caller` may see it (RFC 7662): nil for unknown, revoked,
    /// expired and used-up tokens, and for other clients' refresh tokens.
    // Inlined: a call of a nonisolated async function that is not inlined costs two trips
    // through the event loop's queue (BENCHMARKS.md, "The server on a core of its own").
    @inline(__always)
    func introspect(_ token: String, caller: OAuthClient) async throws -> OAuthTokenLookup? {
        guard let key = Self.key(ofAccessOrRefreshToken: token),
              let lookup = try await store.oauthToken(hash: key.hash, family: key.family),
              lookup.token.isActive(in: lookup.family, at: clock.now)
        else { return nil }
        // A resource server (a client with no grants of its own) may check any access token; an
        // app only its own tokens, so one app cannot read who uses another (RFC 7662 §4).
        if lookup.family.clientId != caller.id, lookup.token.kind == .refresh || !caller.grantTypes.isEmpty { return nil }
        return lookup
    }

    /// Where `token`, an access or a refresh token (introspection and revocation take either),
    /// is kept; nil for anything not shaped like one.
    static func key(ofAccessOrRefreshToken token: String) -> OAuthTokenKey? {
        OAuthTokenKey(token: token, prefix: accessTokenPrefix) ?? OAuthTokenKey(token: token, prefix: refreshTokenPrefix)
    }

    /// Revokes `token` for `caller` (RFC 7009 §2.1). Unknown tokens are not an error.
    /// - Throws: `invalid_grant` when the token was issued to another client (nothing changes).
    func revoke(_ token: String, caller: OAuthClient) async throws {
        // Anything not shaped like a token of ours is unknown: nothing to revoke.
        guard let key = Self.key(ofAccessOrRefreshToken: token) else { return }
        switch try await store.revokeOAuthToken(hash: key.hash, family: key.family, clientId: caller.id, at: clock.now) {
        case .otherClient: throw OAuthError.invalidGrant("the token was issued to another client")
        case .unknown, .accessToken, .family: return
        }
    }

    // MARK: Grants, for the user

    /// The apps holding tokens for the caller's account, with their clients.
    func grants(_ identity: Identity) async throws -> [(family: TokenFamily, client: OAuthClient?)] {
        var result: [(TokenFamily, OAuthClient?)] = []
        for family in try await store.tokenFamilies(accountId: identity.account.id, at: clock.now) {
            result.append((family, try await store.client(id: family.clientId)))
        }
        return result
    }

    /// Revokes grant `id` of the caller's account: every token in it stops working at once.
    /// - Throws: ``QRLoginError/grantNotFound``.
    func revokeGrant(_ identity: Identity, id: String) async throws {
        guard try await store.revokeTokenFamily(id: id, accountId: identity.account.id, at: clock.now) else {
            throw QRLoginError.grantNotFound
        }
    }
}

/// Carries a poll's outcome out of the store's transition. The store runs the closure once,
/// synchronously, before it returns, so the value is read after every write.
private final class PollOutcome: @unchecked Sendable {
    var poll: DevicePoll?
    var issued: IssuedOAuthTokens?
}

/// Carries the secrets minted inside a refresh's atomic step out of it (read after it returns).
private final class RefreshOutcome: @unchecked Sendable {
    var issued: IssuedOAuthTokens?
}

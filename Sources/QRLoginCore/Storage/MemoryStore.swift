import Foundation
import QRLoginOAuth

/// A ``Store`` in process memory, for tests and throwaway servers. Actor isolation makes
/// every method atomic.
public actor MemoryStore: Store {
    private var accounts: [String: Account] = [:]
    private var devices: [String: Device] = [:]   // key: accountId + " " + deviceId
    private var tokens: [String: TokenRecord] = [:]  // key: token id
    private var tokenIdByHash: [String: String] = [:]
    private var codes: [String: OneTimeCode] = [:]
    private var requests: [String: LoginRequest] = [:]
    private var requestIdByPollSecretHash: [String: String] = [:]
    private var oauthClients: [String: OAuthClient] = [:]
    private var families: [String: TokenFamily] = [:]
    private var oauthTokens: [String: OAuthToken] = [:]  // key: token hash
    private var keys: [SigningKey] = []
    private var authorizationCodes: [String: AuthorizationCode] = [:]  // key: code hash
    private var sessions: [String: BrowserSession] = [:]  // key: session id
    private var pushed: [String: PushedRequest] = [:]  // key: request_uri

    /// The DPoP replay cache of a server on this store: ``useRefreshToken(hash:family:at:recording:_:)``
    /// records its proofs here, so they meet the proofs of every other request.
    public nonisolated let replayCache: any ReplayCache

    /// Creates an empty store whose server keeps DPoP proofs in `replayCache`.
    public init(replayCache: any ReplayCache = MemoryReplayCache()) {
        self.replayCache = replayCache
    }

    private static func deviceKey(_ accountId: String, _ deviceId: String) -> String { accountId + " " + deviceId }

    /// Inserts `account`. Usernames are unique case-insensitively, phone numbers exactly.
    /// - Throws: ``QRLoginError/usernameTaken`` if another account has the username (checked
    ///   first), ``QRLoginError/phoneTaken`` if another account has the phone; nothing is stored then.
    public func createAccount(_ account: Account) async throws {
        let name = account.username.lowercased()
        if accounts.values.contains(where: { $0.username.lowercased() == name }) { throw QRLoginError.usernameTaken }
        if let phone = account.phone, accounts.values.contains(where: { $0.phone == phone }) { throw QRLoginError.phoneTaken }
        accounts[account.id] = account
    }

    /// The account with `id`, or nil. Never throws.
    public func account(id: String) async throws -> Account? { accounts[id] }

    /// The account whose username equals `username` ignoring case, or nil. Never throws.
    public func account(username: String) async throws -> Account? {
        let name = username.lowercased()
        return accounts.values.first { $0.username.lowercased() == name }
    }

    /// The account with exactly this `phone`, or nil. Never throws.
    public func account(phone: String) async throws -> Account? {
        accounts.values.first { $0.phone == phone }
    }

    /// Stores `device`, or, if the account already has a device with its id, overwrites that
    /// one's type, name, key, last-seen time, last IP and approver while keeping its creation
    /// time. Never throws.
    public func upsertDevice(_ device: Device) async throws {
        upsert(device)
    }

    private func upsert(_ device: Device) {
        let key = Self.deviceKey(device.accountId, device.id)
        if var existing = devices[key] {
            existing.type = device.type
            existing.name = device.name
            existing.publicKeyJWK = device.publicKeyJWK
            existing.lastSeenAt = device.lastSeenAt
            existing.lastIP = device.lastIP
            existing.approvedBy = device.approvedBy
            devices[key] = existing
        } else {
            devices[key] = device
        }
    }

    /// The device `id` linked to `accountId`, or nil. Never throws.
    public func device(id: String, accountId: String) async throws -> Device? {
        devices[Self.deviceKey(accountId, id)]
    }

    /// Every device linked to `accountId`, oldest first (ties by id). Never throws.
    public func devices(accountId: String) async throws -> [Device] {
        devices.values.filter { $0.accountId == accountId }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    /// Sets the last-seen time and last IP of device `id` of `accountId`; does nothing if it
    /// is not linked. Never throws.
    public func touchDevice(id: String, accountId: String, at date: Date, ip: String) async throws {
        let key = Self.deviceKey(accountId, id)
        devices[key]?.lastSeenAt = date
        devices[key]?.lastIP = ip
    }

    /// Revokes (at `date`) every active token of device `id` for `accountId`, then unlinks the
    /// device. Returns whether the device was linked. Never throws.
    public func removeDevice(id: String, accountId: String, at date: Date) async throws -> Bool {
        for (tokenId, token) in tokens where token.accountId == accountId && token.deviceId == id && token.revokedAt == nil {
            tokens[tokenId]?.revokedAt = date
        }
        for (sessionId, session) in sessions where session.accountId == accountId && session.deviceId == id && session.revokedAt == nil {
            sessions[sessionId]?.revokedAt = date
        }
        return devices.removeValue(forKey: Self.deviceKey(accountId, id)) != nil
    }

    /// Stores `token`, replacing any record with the same id. Never throws.
    public func insertToken(_ token: TokenRecord) async throws {
        insert(token)
    }

    private func insert(_ token: TokenRecord) {
        tokens[token.id] = token
        tokenIdByHash[token.hash] = token.id
    }

    /// The token whose SHA-256 hash is `hash`, revoked or not, or nil. Never throws.
    public func token(hash: String) async throws -> TokenRecord? {
        tokenIdByHash[hash].flatMap { tokens[$0] }
    }

    /// Marks token `id` revoked at `date`. Returns false, changing nothing, if it is unknown or
    /// already revoked. Never throws.
    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        guard let token = tokens[id], token.revokedAt == nil else { return false }
        tokens[id]?.revokedAt = date
        return true
    }

    /// Stores `code` for its phone, replacing any earlier code and its attempt count. Never throws.
    public func putOneTimeCode(_ code: OneTimeCode) async throws {
        codes[code.phone] = code
    }

    /// Checks `codeHash` against the code for `phone` in one step: `.accepted` consumes the code;
    /// a wrong hash counts an attempt and gives `.rejected(remaining:)`, or `.tooManyAttempts`
    /// (deleting the code) once `maxAttempts` are used; `.missing` if there is no code, it has
    /// expired at `date`, or its attempts are used up (such a code is deleted). Never throws.
    public func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at date: Date) async throws -> OneTimeCodeCheck {
        guard var code = codes[phone], date < code.expiresAt, code.attempts < maxAttempts else {
            codes[phone] = nil
            return .missing
        }
        if Secrets.constantTimeEquals(code.codeHash, codeHash) {
            codes[phone] = nil
            return .accepted
        }
        code.attempts += 1
        if code.attempts >= maxAttempts {
            codes[phone] = nil
            return .tooManyAttempts
        }
        codes[phone] = code
        return .rejected(remaining: maxAttempts - code.attempts)
    }

    /// Stores `request`, replacing any request with the same id. Never throws.
    public func insertLoginRequest(_ request: LoginRequest) async throws {
        requests[request.id] = request
        if request.deviceGrant != nil { requestIdByPollSecretHash[request.pollSecretHash] = request.id }
    }

    /// The login request `id` in whatever state it is, or nil. Never throws.
    public func loginRequest(id: String) async throws -> LoginRequest? { requests[id] }

    /// Runs `transition` on a copy of request `id`; if it returns, writes the request, upserts
    /// and inserts the returned device and token, and revokes the returned token id (if still
    /// active) at `revokedAt` or now, all in one actor turn.
    /// - Returns: the request as written.
    /// - Throws: ``QRLoginError/notFound`` if there is no such request; whatever `transition`
    ///   throws, in which case nothing is written.
    public func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest {
        guard var request = requests[id] else { throw QRLoginError.notFound }
        let effects = try transition(&request)
        requests[id] = request
        if let device = effects.upsertDevice { upsert(device) }
        if let token = effects.insertToken { insert(token) }
        if let revoke = effects.revokeTokenId, tokens[revoke]?.revokedAt == nil {
            tokens[revoke]?.revokedAt = effects.revokedAt ?? Date()
        }
        if let grant = effects.issueGrant {
            families[grant.family.id] = grant.family
            for token in grant.tokens { oauthTokens[token.hash] = token }
        }
        return request
    }

    /// Deletes device tokens that expired, or were revoked, before `cutoff`. Never throws.
    public func deleteTokens(endedBefore cutoff: Date) async throws -> Int {
        let ended = tokens.values.filter { $0.expiresAt < cutoff || ($0.revokedAt.map { $0 < cutoff } ?? false) }
        for token in ended {
            tokens[token.id] = nil
            tokenIdByHash[token.hash] = nil
        }
        return ended.count
    }

    /// Stores `expired` on every pending or scanned request past its own expiry. Returns how
    /// many changed. Never throws.
    public func expireLoginRequests(at now: Date) async throws -> Int {
        var count = 0
        for (id, request) in requests where !request.state.isFinal && request.expiresAt <= now {
            requests[id]?.expireIfDue(at: now)
            count += 1
        }
        return count
    }

    /// Deletes every login request whose `expiresAt` is before `cutoff`, in any state.
    /// Returns how many were deleted. Never throws.
    public func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int {
        let old = requests.values.filter { $0.expiresAt < cutoff }
        for request in old {
            requests[request.id] = nil
            requestIdByPollSecretHash[request.pollSecretHash] = nil
        }
        return old.count
    }

    /// The login request whose poll secret hashes to `hash`, or nil. Never throws.
    public func loginRequest(pollSecretHash hash: String) async throws -> LoginRequest? {
        requestIdByPollSecretHash[hash].flatMap { requests[$0] }
    }

    /// The device-grant request with user code `userCode` that has not expired at `now`, or
    /// nil. Never throws.
    public func loginRequest(userCode: String, at now: Date) async throws -> LoginRequest? {
        requests.values.first { $0.deviceGrant?.userCode == userCode && $0.expiresAt > now }
    }

    /// Stores `client`, replacing any client with its id. Never throws.
    public func upsertClient(_ client: OAuthClient) async throws {
        oauthClients[client.id] = client
    }

    /// The client `id`, or nil. Never throws.
    public func client(id: String) async throws -> OAuthClient? { oauthClients[id] }

    /// Every client, ordered by id. Never throws.
    public func clients() async throws -> [OAuthClient] {
        oauthClients.values.sorted { $0.id < $1.id }
    }

    /// Removes client `id` and revokes its live families at `date`. Never throws.
    public func removeClient(id: String, at date: Date) async throws -> Bool {
        guard oauthClients.removeValue(forKey: id) != nil else { return false }
        for (familyId, family) in families where family.clientId == id && family.revokedAt == nil {
            families[familyId]?.revokedAt = date
        }
        return true
    }

    /// The token with hash `hash`, if it is in `familyId` (nil: any family).
    private func oauthToken(_ hash: String, in familyId: String?) -> OAuthToken? {
        oauthTokens[hash].flatMap { familyId == nil || familyId == $0.familyId ? $0 : nil }
    }

    /// The token with hash `hash`, its family and its account's username, or nil. Never throws.
    public func oauthToken(hash: String, family familyId: String?) async throws -> OAuthTokenLookup? {
        guard let token = oauthToken(hash, in: familyId), let family = families[token.familyId],
              let account = accounts[family.accountId]
        else { return nil }
        return OAuthTokenLookup(token: token, family: family, username: account.username)
    }

    /// Records `proof` in ``replayCache``, then applies `decide` to the refresh token with hash
    /// `hash` without suspending; nil if there is none. Rethrows what `decide` throws, writing
    /// nothing of the refresh then.
    public func useRefreshToken(
        hash: String, family familyId: String?, at now: Date, recording proof: ProofRecord?,
        _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        if let proof {
            let fresh: Bool
            do {
                fresh = try await replayCache.insert(proof.key, expiresAt: proof.expiresAt, now: proof.now)
            } catch {
                // As the verifier answers a cache that cannot answer: the proof is not let through.
                throw QRLoginError.storeUnavailable
            }
            guard fresh else { throw QRLoginError.replayedProof }
        }
        guard let token = oauthToken(hash, in: familyId), token.kind == .refresh, let family = families[token.familyId] else { return nil }
        let decision = try decide(token, family)
        switch decision {
        case .rotate(let newTokens, let expiresAt):
            oauthTokens[hash]?.usedAt = now
            for new in newTokens { oauthTokens[new.hash] = new }
            if let expiresAt { families[family.id]?.expiresAt = expiresAt }
        case .revokeFamily:
            if family.revokedAt == nil { families[family.id]?.revokedAt = now }
        }
        return decision
    }

    /// Revokes the token with hash `hash` (a refresh token with its family) if `clientId`
    /// holds it. Never throws.
    public func revokeOAuthToken(hash: String, family familyId: String?, clientId: String, at date: Date) async throws -> OAuthRevocation {
        guard let token = oauthToken(hash, in: familyId), let family = families[token.familyId] else { return .unknown }
        guard family.clientId == clientId else { return .otherClient }
        switch token.kind {
        case .access:
            if token.revokedAt == nil { oauthTokens[hash]?.revokedAt = date }
            return .accessToken
        case .refresh:
            if family.revokedAt == nil { families[family.id]?.revokedAt = date }
            return .family
        }
    }

    /// The families of `accountId` that hold a working token at `now`, each with the expiry of
    /// its last working token, oldest first (ties by id). Never throws.
    public func tokenFamilies(accountId: String, at now: Date) async throws -> [TokenFamily] {
        var workingUntil: [String: Date] = [:]
        for token in oauthTokens.values where token.usedAt == nil && token.revokedAt == nil {
            workingUntil[token.familyId] = max(workingUntil[token.familyId] ?? token.expiresAt, token.expiresAt)
        }
        return families.values.compactMap { family -> TokenFamily? in
            guard family.accountId == accountId, family.isLive(at: now), let until = workingUntil[family.id], until > now else { return nil }
            var listed = family
            listed.expiresAt = until
            return listed
        }
        .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    /// Revokes family `id` of `accountId` if it is not revoked yet. Never throws.
    public func revokeTokenFamily(id: String, accountId: String, at date: Date) async throws -> Bool {
        guard let family = families[id], family.accountId == accountId, family.revokedAt == nil else { return false }
        families[id]?.revokedAt = date
        return true
    }

    /// Deletes tokens and families that expired before `cutoff`. Never throws.
    public func deleteOAuthTokens(expiredBefore cutoff: Date) async throws -> Int {
        let oldTokens = oauthTokens.values.filter { $0.expiresAt < cutoff }.map(\.hash)
        for hash in oldTokens { oauthTokens[hash] = nil }
        let oldFamilies = families.values.filter { $0.expiresAt < cutoff }.map(\.id)
        for id in oldFamilies { families[id] = nil }
        let oldCodes = authorizationCodes.values.filter { $0.expiresAt < cutoff }.map(\.hash)
        for hash in oldCodes { authorizationCodes[hash] = nil }
        let oldSessions = sessions.values.filter { $0.expiresAt < cutoff }.map(\.id)
        for id in oldSessions { sessions[id] = nil }
        let oldPushed = pushed.values.filter { $0.expiresAt < cutoff }.map(\.requestURI)
        for uri in oldPushed { pushed[uri] = nil }
        let standIns = devices.filter { key, device in
            device.id.hasPrefix("browser-") && !sessions.values.contains { $0.accountId == device.accountId && $0.deviceId == device.id }
        }.map(\.key)
        for key in standIns { devices[key] = nil }
        return oldTokens.count + oldFamilies.count + oldCodes.count + oldSessions.count + oldPushed.count + standIns.count
    }

    /// Every signing key, oldest first (ties by kid). Never throws.
    public func signingKeys() async throws -> [SigningKey] {
        keys.sorted { ($0.createdAt, $0.kid) < ($1.createdAt, $1.kid) }
    }

    /// Adds `key` and retires the other active keys of its algorithm. Never throws.
    public func addSigningKey(_ key: SigningKey) async throws {
        for index in keys.indices where keys[index].algorithm == key.algorithm && keys[index].retiredAt == nil {
            keys[index].retiredAt = key.createdAt
        }
        keys.append(key)
    }

    /// Deletes keys retired before `cutoff`. Never throws.
    public func deleteSigningKeys(retiredBefore cutoff: Date) async throws -> Int {
        let before = keys.count
        keys.removeAll { $0.retiredAt.map { $0 < cutoff } ?? false }
        return before - keys.count
    }

    /// Stores `code`. Never throws.
    public func insertAuthorizationCode(_ code: AuthorizationCode) async throws {
        authorizationCodes[code.hash] = code
    }

    /// Applies `decide` to the code with hash `hash` in one actor turn; nil if there is none.
    /// Rethrows what `decide` throws, writing nothing then.
    public func redeemAuthorizationCode(hash: String, at now: Date, _ decide: @Sendable (AuthorizationCode) throws -> CodeRedemption) async throws -> CodeRedemption? {
        guard let code = authorizationCodes[hash] else { return nil }
        let decision = try decide(code)
        switch decision {
        case .issue(let grant):
            authorizationCodes[hash]?.usedAt = now
            authorizationCodes[hash]?.familyId = grant.family.id
            families[grant.family.id] = grant.family
            for token in grant.tokens { oauthTokens[token.hash] = token }
        case .revokeIssued:
            if let familyId = code.familyId, families[familyId]?.revokedAt == nil { families[familyId]?.revokedAt = now }
        }
        return decision
    }

    /// Stores `session`. Never throws.
    public func insertBrowserSession(_ session: BrowserSession) async throws {
        sessions[session.id] = session
    }

    /// The session with this cookie secret hash, or nil. Never throws.
    public func browserSession(secretHash: String) async throws -> BrowserSession? {
        sessions.values.first { $0.secretHash == secretHash }
    }

    /// Ends session `id`. Never throws.
    public func revokeBrowserSession(id: String, at date: Date) async throws -> Bool {
        guard let session = sessions[id], session.revokedAt == nil else { return false }
        sessions[id]?.revokedAt = date
        return true
    }

    /// Stores a pushed request. Never throws.
    public func insertPushedRequest(_ request: PushedRequest) async throws {
        pushed[request.requestURI] = request
    }

    /// The pushed request behind `uri`, or nil. Never throws.
    public func pushedRequest(uri: String) async throws -> PushedRequest? { pushed[uri] }
}

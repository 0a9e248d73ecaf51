import Foundation
import QRLoginOAuth

/// Records written together with a login request transition, in the same atomic step.
public struct LoginSideEffects: Sendable, Equatable {
    /// A device record to create or update (on confirm: the PC's device).
    public var upsertDevice: Device?
    /// A token to insert (on pickup: the PC's new token).
    public var insertToken: TokenRecord?
    /// A token to revoke (on pickup: the one handed out before).
    public var revokeTokenId: String?
    /// The time written as the revocation time.
    public var revokedAt: Date?
    /// A new OAuth token family with its first tokens (on a device grant's redemption).
    public var issueGrant: IssuedGrant?

    /// Creates a set of side effects; all empty by default.
    public init(upsertDevice: Device? = nil, insertToken: TokenRecord? = nil, revokeTokenId: String? = nil, revokedAt: Date? = nil, issueGrant: IssuedGrant? = nil) {
        self.upsertDevice = upsertDevice
        self.insertToken = insertToken
        self.revokeTokenId = revokeTokenId
        self.revokedAt = revokedAt
        self.issueGrant = issueGrant
    }

    /// No side effects.
    public static let none = LoginSideEffects()
}

/// Persistence for accounts, devices, tokens, one-time codes and login requests.
///
/// Every method is atomic. ``transitionLoginRequest(id:_:)`` is the only way a login request
/// changes: the store reads the request, runs the pure transition, and writes the new request
/// and its side effects in one step, so concurrent callers see exactly one winner.
/// Methods throw ``QRLoginError`` for domain conflicts and any other error for storage faults.
public protocol Store: Sendable {
    // MARK: Accounts

    /// Inserts a new account.
    /// - Throws: ``QRLoginError/usernameTaken`` (case-insensitive) or ``QRLoginError/phoneTaken``.
    func createAccount(_ account: Account) async throws
    /// The account with `id`, if any.
    func account(id: String) async throws -> Account?
    /// The account whose username equals `username` case-insensitively, if any.
    func account(username: String) async throws -> Account?
    /// The account with `phone`, if any.
    func account(phone: String) async throws -> Account?

    // MARK: Devices

    /// Creates the device or updates its type, name, key, last-seen, last IP and approver.
    func upsertDevice(_ device: Device) async throws
    /// The device `id` of `accountId`, if linked.
    func device(id: String, accountId: String) async throws -> Device?
    /// All devices of `accountId`, oldest first.
    func devices(accountId: String) async throws -> [Device]
    /// Records a use of the device.
    func touchDevice(id: String, accountId: String, at: Date, ip: String) async throws
    /// Unlinks a device and revokes all of its tokens, and ends the browser sessions it signed in,
    /// for that account. Returns whether it existed.
    func removeDevice(id: String, accountId: String, at: Date) async throws -> Bool

    // MARK: Tokens

    /// Inserts a token record.
    func insertToken(_ token: TokenRecord) async throws
    /// The token whose hash is `hash`, revoked or not.
    func token(hash: String) async throws -> TokenRecord?
    /// The token whose hash is `hash` (revoked or not) with its account and its device, as one
    /// read where the store can: what every authenticated request needs. Nil if any of the three
    /// is missing. The default reads them one after another.
    /// - Throws: a storage fault.
    func identity(tokenHash: String) async throws -> StoredIdentity?
    /// Revokes one token; returns whether it was active.
    func revokeToken(id: String, at: Date) async throws -> Bool
    /// Deletes device tokens that expired, or were revoked, before `cutoff`: they can never
    /// work again, and without this the table would only grow. Returns how many.
    func deleteTokens(endedBefore cutoff: Date) async throws -> Int

    // MARK: One-time codes

    /// Stores a code for `code.phone`, replacing any earlier one.
    func putOneTimeCode(_ code: OneTimeCode) async throws
    /// Checks a code atomically: counts the attempt, consumes the code on success, and deletes
    /// it once `maxAttempts` wrong attempts are used.
    func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at: Date) async throws -> OneTimeCodeCheck

    // MARK: Login requests

    /// Inserts a new login request.
    func insertLoginRequest(_ request: LoginRequest) async throws
    /// The login request `id`, if any.
    func loginRequest(id: String) async throws -> LoginRequest?
    /// Atomically applies `transition` to request `id` and writes the result plus the returned
    /// side effects. If `transition` throws, nothing is written and the error is rethrown.
    /// - Returns: the request as written.
    /// - Throws: ``QRLoginError/notFound`` if there is no such request.
    func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest
    /// Deletes requests whose `expiresAt` is before `cutoff`. Returns how many.
    func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int
    /// Stores `expired` on every pending or scanned request whose own `expiresAt` is at or
    /// before `now` (clients already see it expired, ``LoginRequest/effectiveState(at:)``), as
    /// ``LoginRequest/expireIfDue(at:)`` does, each counting as a change (version + 1). A scanned
    /// request whose ticket alone ran out is left as it is, so a late confirm still hears
    /// `ticket_expired`. Returns how many changed: each expiry is counted once, by whichever
    /// call stored it.
    func expireLoginRequests(at now: Date) async throws -> Int
    /// The device-grant login request whose device code (its poll secret) hashes to `hash`; a
    /// QR login is never found this way.
    func loginRequest(pollSecretHash hash: String) async throws -> LoginRequest?
    /// The device-grant login request whose normalised user code is `userCode` and that has not
    /// expired at `now` (codes of expired requests may be given out again).
    func loginRequest(userCode: String, at now: Date) async throws -> LoginRequest?

    // MARK: OAuth clients

    /// Inserts `client`, or replaces the client with its id.
    func upsertClient(_ client: OAuthClient) async throws
    /// The client `id`, if registered.
    func client(id: String) async throws -> OAuthClient?
    /// Every client, by id.
    func clients() async throws -> [OAuthClient]
    /// Removes client `id` and revokes (at `date`) every token family it holds. Returns whether
    /// it existed.
    func removeClient(id: String, at date: Date) async throws -> Bool

    // MARK: OAuth tokens
    //
    // A token is found by its `hash` (``OAuthToken/hash``) and by the `family` the token names
    // (``OAuthTokenKey``): a store may keep a family's tokens together and look only there. A
    // token that names no family (issued before tokens named theirs) comes with nil and is found
    // by its hash alone. A token is never found under a family other than its own.

    /// The OAuth token (access or refresh) whose hash is `hash`, in `family`, with its family
    /// and the username of its account, in one read; nil if any is missing.
    func oauthToken(hash: String, family: String?) async throws -> OAuthTokenLookup?
    /// Atomically reads the refresh token whose hash is `hash`, in `family`, with its family, runs `decide`,
    /// and applies the decision: ``RefreshDecision/rotate(tokens:familyExpiresAt:)`` marks the
    /// token used and inserts the new ones, ``RefreshDecision/revokeFamily`` revokes the family
    /// at `now`. If `decide` throws, nothing of the refresh is written and the error is
    /// rethrown.
    ///
    /// With `proof`, the DPoP proof of the request is recorded first, as the server's replay
    /// cache would record it (``ReplayCache/insert(_:expiresAt:now:)``), at the latest in the
    /// same commit as the refresh: a store that keeps the replay cache in its database saves a
    /// commit per refresh. The proof stays recorded also when `decide` refuses the refresh or
    /// no token is found.
    /// - Returns: the decision applied, or nil when no refresh token has that hash in `family`.
    /// - Throws: ``QRLoginError/replayedProof`` (nothing written) when `proof` was recorded
    ///   before and is still live.
    func useRefreshToken(
        hash: String, family: String?, at now: Date, recording proof: ProofRecord?,
        _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision?
    /// Revokes the token whose hash is `hash`, in `family`, if it belongs to `clientId`: an
    /// access token on its own, a refresh token with its whole family (RFC 7009 §2.1).
    func revokeOAuthToken(hash: String, family: String?, clientId: String, at date: Date) async throws -> OAuthRevocation
    /// The token families (grants) of `accountId` that hold a working token at `now` (not
    /// revoked, expired or used up), oldest first, each with `expiresAt` set to the expiry of
    /// its last working token.
    func tokenFamilies(accountId: String, at now: Date) async throws -> [TokenFamily]
    /// Revokes family `id` of `accountId` at `date`. Returns whether a live family was revoked.
    func revokeTokenFamily(id: String, accountId: String, at date: Date) async throws -> Bool
    /// Deletes OAuth tokens, token families, authorization codes and browser sessions whose
    /// `expiresAt` is before `cutoff`, and the stand-in devices (`browser-…`) of password and
    /// code sessions that no longer have a session. Returns how many records were deleted.
    func deleteOAuthTokens(expiredBefore cutoff: Date) async throws -> Int

    // MARK: Authorization codes and browser sessions

    /// Inserts a new authorization code.
    func insertAuthorizationCode(_ code: AuthorizationCode) async throws
    /// Atomically reads the code whose hash is `hash`, runs `decide`, and applies the decision:
    /// ``CodeRedemption/issue(_:)`` marks the code used (remembering the family) and writes the
    /// family and its tokens; ``CodeRedemption/revokeIssued`` revokes, at `now`, the family the
    /// first redemption wrote. If `decide` throws, nothing is written.
    /// - Returns: the decision applied, or nil when no code has that hash.
    func redeemAuthorizationCode(hash: String, at now: Date, _ decide: @Sendable (AuthorizationCode) throws -> CodeRedemption) async throws -> CodeRedemption?
    /// Inserts a new browser session.
    func insertBrowserSession(_ session: BrowserSession) async throws
    /// The session whose cookie secret hashes to `secretHash`, live or not.
    func browserSession(secretHash: String) async throws -> BrowserSession?
    /// Ends session `id` at `date`. Returns whether it was live.
    func revokeBrowserSession(id: String, at date: Date) async throws -> Bool
    /// Inserts a pushed authorization request (RFC 9126).
    func insertPushedRequest(_ request: PushedRequest) async throws
    /// The pushed request behind `uri`, expired or not.
    func pushedRequest(uri: String) async throws -> PushedRequest?

    // MARK: Signing keys

    /// Every signing key, retired or not, oldest first.
    func signingKeys() async throws -> [SigningKey]
    /// Inserts `key` and, in the same step, retires (at `key.createdAt`) every other active key
    /// of its algorithm: the new key takes over signing.
    func addSigningKey(_ key: SigningKey) async throws
    /// Deletes keys retired before `cutoff`. Returns how many.
    func deleteSigningKeys(retiredBefore cutoff: Date) async throws -> Int
}

/// A token with its account and device, as ``Store/identity(tokenHash:)`` reads them.
public struct StoredIdentity: Sendable, Equatable {
    /// The token, revoked or not.
    public var token: TokenRecord
    /// The account the token belongs to.
    public var account: Account
    /// The device the token is bound to.
    public var device: Device

    /// Groups a token with its account and device.
    public init(token: TokenRecord, account: Account, device: Device) {
        self.token = token
        self.account = account
        self.device = device
    }
}

extension Store {
    /// The default ``Store/identity(tokenHash:)``: the token, then its account, then its
    /// device, in three reads.
    /// - Throws: whatever those reads throw: a storage fault.
    public func identity(tokenHash: String) async throws -> StoredIdentity? {
        guard let token = try await token(hash: tokenHash),
              let account = try await account(id: token.accountId),
              let device = try await device(id: token.deviceId, accountId: token.accountId)
        else { return nil }
        return StoredIdentity(token: token, account: account, device: device)
    }
}

/// A storage fault that means the store cannot serve now (its database is unreachable or did not
/// answer in time), as opposed to a bug or bad data: the server answers it with 503 and
/// `store_unavailable`, so a load balancer or client retries elsewhere or later.
public protocol StoreUnavailableError: Error {
    /// Whether this failure is of that kind.
    var isUnavailable: Bool { get }
}

extension Store {
    /// ``useRefreshToken(hash:family:at:recording:_:)`` with no proof to record.
    public func useRefreshToken(
        hash: String, family: String?, at now: Date, _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        try await useRefreshToken(hash: hash, family: family, at: now, recording: nil, decide)
    }
}

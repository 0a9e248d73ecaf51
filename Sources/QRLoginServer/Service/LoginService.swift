import Crypto
import Foundation
import Logging
import QRLoginCore
import QRLoginOAuth

/// Facts about the client that sent a request, as the server saw them.
public struct ClientInfo: Sendable {
    /// The client IP (after trusted-proxy resolution).
    public var ip: String
    /// The User-Agent header, cut to a sane length.
    public var userAgent: String

    /// Creates client facts.
    public init(ip: String, userAgent: String) {
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// What a device says about itself when it signs in or asks for a QR login.
public struct DeviceInfo: Sendable {
    /// The device kind.
    public var type: DeviceType
    /// The device name (validated, client-supplied text).
    public var name: String
}

/// A verified caller: a live token used with a proof of the key it is bound to.
public struct Identity: Sendable {
    /// The token's account.
    public var account: Account
    /// The calling device.
    public var device: Device
    /// The token used.
    public var token: TokenRecord
}

/// An access token just issued: the secret is returned once and never stored.
public struct IssuedToken: Sendable {
    /// The secret to send as `Authorization: DPoP <accessToken>`.
    public var accessToken: String
    /// The stored record.
    public var record: TokenRecord
    /// The account.
    public var account: Account
    /// The device the token is bound to.
    public var device: Device
}

/// What a PC sees of its login request.
public struct LoginStatus: Sendable {
    /// The request, as stored.
    public var request: LoginRequest
    /// The state clients see (stored state with expiry applied).
    public var state: LoginState
    /// On `confirmed`: the token just collected.
    public var token: IssuedToken?
}

/// What the scanning phone gets.
public struct ScanResult: Sendable {
    /// The one-time ticket to confirm or deny with.
    public var ticket: String
    /// The request after the scan.
    public var request: LoginRequest
    /// For a device grant: the client that asks.
    public var client: OAuthClient?
}

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

/// The login service: accounts, device-bound tokens and the QR flow, with no HTTP in it.
/// Every method throws ``QRLoginError`` for client mistakes; other errors are server faults.
public struct LoginService: Sendable {
    let store: any Store
    let verifier: DPoPVerifier
    let notifier: any LoginEventNotifier
    let clock: any NowClock
    let settings: FlowSettings
    let codeSender: any OneTimeCodeSender
    let passwords: PasswordHasher
    /// Key for hashing one-time codes: a six-digit code's plain SHA-256 would fall to a
    /// million guesses, so codes are stored as HMAC under a key that is not stored with them
    /// (one instance: made at start, in memory; several: shared through the database, see
    /// README "Run several instances").
    let codeKey: SymmetricKey
    /// Which read of each login request may collect its token (the newest).
    let pickups: any PickupLedger
    /// The one timer behind every wait's timeout (SSE heartbeats, long-poll limits, deadlines).
    let waitTimer: WaitTimer
    /// Where waiting PCs are counted; nil: nowhere.
    let metrics: ServerMetrics?

    /// Creates the service over its dependencies.
    public init(
        store: any Store, verifier: DPoPVerifier, notifier: any LoginEventNotifier, clock: any NowClock, settings: FlowSettings,
        codeSender: any OneTimeCodeSender, waitTimer: WaitTimer = WaitTimer(),
        pickups: any PickupLedger = InProcessPickups(), codeKey: SymmetricKey = SymmetricKey(size: .bits256), metrics: ServerMetrics? = nil
    ) {
        self.metrics = metrics
        self.store = store
        self.waitTimer = waitTimer
        self.verifier = verifier
        self.notifier = notifier
        self.clock = clock
        self.settings = settings
        self.codeSender = codeSender
        self.passwords = PasswordHasher(cost: settings.bcryptCost)
        self.codeKey = codeKey
        self.pickups = pickups
    }

    // MARK: Accounts

    /// Registers an account.
    /// - Throws: ``QRLoginError/invalidInput(_:)``, ``QRLoginError/usernameTaken``, ``QRLoginError/phoneTaken``.
    public func register(username: String, password: String, displayName: String?, phone: String?) async throws -> Account {
        let username = try Validate.username(username)
        let password = try Validate.password(password)
        let displayName = try Validate.name(displayName ?? username, field: "displayName")
        let phone = try phone.map { value throws(QRLoginError) in try Validate.phone(value) }
        if try await store.account(username: username) != nil { throw QRLoginError.usernameTaken }
        let account = Account(
            id: Secrets.publicId(), username: username, passwordHash: try await passwords.hash(password),
            phone: phone, displayName: displayName, createdAt: clock.now
        )
        try await store.createAccount(account)
        return account
    }

    /// Password sign-in; the new token is bound to the key of `proof`.
    /// - Throws: ``QRLoginError/invalidCredentials`` for an unknown user and a wrong password alike.
    public func signIn(username: String, password: String, device: DeviceInfo, proof: DPoPProof, client: ClientInfo) async throws -> IssuedToken {
        guard username.utf8.count <= Validate.maxUsernameLength * 4, password.utf8.count <= Validate.maxPasswordLength else {
            throw QRLoginError.invalidCredentials
        }
        let account = try await store.account(username: username)
        let ok = try await passwords.verify(password, hash: account?.passwordHash ?? passwords.dummyHash)
        guard let account, ok else { throw QRLoginError.invalidCredentials }
        return try await issueToken(account: account, device: device, proof: proof, origin: .password, approvedBy: nil, client: client)
    }

    /// Starts a one-time-code sign-in. Succeeds whether or not the phone is registered, so the
    /// call cannot be used to find out which numbers have accounts.
    public func startCodeSignIn(phone: String) async throws {
        let phone = try Validate.phone(phone)
        guard try await store.account(phone: phone) != nil else { return }
        let code = String(format: "%06d", Secrets.randomInt(in: 0...999_999))
        try await store.putOneTimeCode(OneTimeCode(phone: phone, codeHash: codeHash(code, phone: phone), expiresAt: clock.now.addingTimeInterval(settings.codeTTL)))
        try await codeSender.send(code: code, to: phone)
    }

    /// Finishes a one-time-code sign-in.
    /// - Throws: ``QRLoginError/invalidCode``, ``QRLoginError/tooManyAttempts``.
    public func verifyCodeSignIn(phone: String, code: String, device: DeviceInfo, proof: DPoPProof, client: ClientInfo) async throws -> IssuedToken {
        let account = try await checkCode(phone: phone, code: code)
        return try await issueToken(account: account, device: device, proof: proof, origin: .sms, approvedBy: nil, client: client)
    }

    /// Checks (and uses up) a one-time code: the account whose phone it was sent to.
    /// - Throws: ``QRLoginError/invalidInput(_:)``, ``QRLoginError/invalidCode``, ``QRLoginError/tooManyAttempts``.
    func checkCode(phone: String, code: String) async throws -> Account {
        let phone = try Validate.phone(phone)
        let code = try Validate.code(code)
        switch try await store.checkOneTimeCode(phone: phone, codeHash: codeHash(code, phone: phone), maxAttempts: settings.codeAttempts, at: clock.now) {
        case .accepted: break
        case .tooManyAttempts: throw QRLoginError.tooManyAttempts
        case .rejected, .missing: throw QRLoginError.invalidCode
        }
        guard let account = try await store.account(phone: phone) else { throw QRLoginError.invalidCode }
        return account
    }

    private func codeHash(_ code: String, phone: String) -> String {
        Base64URL.encode(HMAC<SHA256>.authenticationCode(for: Data("\(phone):\(code)".utf8), using: codeKey))
    }

    func newToken(accountId: String, deviceId: String, deviceType: DeviceType, origin: TokenOrigin, approvedBy: String?, now: Date, lifetime: TimeInterval? = nil) -> (secret: String, record: TokenRecord) {
        let secret = Secrets.secret(prefix: Secrets.accessTokenPrefix)
        let record = TokenRecord(
            id: Secrets.publicId(), hash: Secrets.hash(secret), accountId: accountId, deviceId: deviceId,
            deviceType: deviceType, origin: origin, approvedBy: approvedBy, createdAt: now,
            expiresAt: now.addingTimeInterval(lifetime ?? settings.tokenTTL)
        )
        return (secret, record)
    }

    private func issueToken(account: Account, device info: DeviceInfo, proof: DPoPProof, origin: TokenOrigin, approvedBy: String?, client: ClientInfo) async throws -> IssuedToken {
        let now = clock.now
        let existing = try await store.device(id: proof.thumbprint, accountId: account.id)
        let device = Device(
            id: proof.thumbprint, accountId: account.id, type: info.type, name: info.name, publicKeyJWK: proof.publicKeyJWK,
            createdAt: existing?.createdAt ?? now, lastSeenAt: now, lastIP: client.ip
        )
        try await store.upsertDevice(device)
        let (secret, record) = newToken(accountId: account.id, deviceId: device.id, deviceType: device.type, origin: origin, approvedBy: approvedBy, now: now)
        try await store.insertToken(record)
        return IssuedToken(accessToken: secret, record: record, account: account, device: device)
    }

    // MARK: Device tokens

    /// Verifies `Authorization: DPoP <token>` with its proof.
    /// - Throws: ``QRLoginError/missingCredentials``, ``QRLoginError/invalidProof(_:)``,
    ///   ``QRLoginError/replayedProof``, ``QRLoginError/invalidToken``.
    public func authenticate(accessToken: String?, proof: String?, method: String, path: String, client: ClientInfo) async throws -> Identity {
        guard let accessToken, Validate.secret(accessToken, prefix: Secrets.accessTokenPrefix) else {
            throw accessToken == nil ? QRLoginError.missingCredentials : QRLoginError.invalidToken
        }
        let verified = try await verifier.verify(proof: proof, method: method, path: path, accessToken: accessToken)
        let now = clock.now
        guard let identity = try await store.identity(tokenHash: Secrets.hash(accessToken)),
              identity.token.isActive(at: now), identity.token.deviceId == verified.thumbprint
        else { throw QRLoginError.invalidToken }
        let (token, account, device) = (identity.token, identity.account, identity.device)
        // Last-seen is informational; writing it at most once a minute keeps reads cheap.
        if now.timeIntervalSince(device.lastSeenAt) > 60 || device.lastIP != client.ip {
            try await store.touchDevice(id: device.id, accountId: account.id, at: now, ip: client.ip)
        }
        return Identity(account: account, device: device, token: token)
    }

    /// Revokes the caller's token.
    public func logout(_ identity: Identity) async throws {
        _ = try await store.revokeToken(id: identity.token.id, at: clock.now)
    }

    /// The caller's linked devices.
    public func devices(_ identity: Identity) async throws -> [Device] {
        try await store.devices(accountId: identity.account.id)
    }

    /// Remote logout: unlinks `deviceId` and revokes all its tokens at once.
    /// - Throws: ``QRLoginError/deviceNotFound``.
    public func removeDevice(_ identity: Identity, deviceId: String) async throws {
        guard try await store.removeDevice(id: deviceId, accountId: identity.account.id, at: clock.now) else {
            throw QRLoginError.deviceNotFound
        }
    }
}

import Foundation
import QRLoginOAuth

/// What the PC told the server about itself, plus what the server saw of it.
public struct RequesterContext: Codable, Sendable, Equatable {
    /// The device type the PC gave.
    public var type: DeviceType
    /// The device name the PC gave (client-supplied text).
    public var name: String
    /// The client IP the server saw.
    public var ip: String
    /// The User-Agent header the server saw (client-supplied text).
    public var userAgent: String

    /// Creates a requester context.
    public init(type: DeviceType, name: String, ip: String, userAgent: String) {
        self.type = type
        self.name = name
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// A QR login request: a value type holding the whole state, with transitions that either
/// return the new state or throw a ``QRLoginError``. No I/O happens here; a ``Store`` applies
/// each transition atomically.
public struct LoginRequest: Codable, Sendable, Equatable {
    /// Public id, carried in the QR's url (not secret).
    public var id: String
    /// SHA-256 of the poll secret that only the PC holds.
    public var pollSecretHash: String
    /// Thumbprint of the PC's key; the token will be bound to it.
    public var pcKeyThumbprint: String
    /// The PC's public key as JWK JSON, to create its device record on confirm.
    public var pcPublicKeyJWK: String
    /// Who is asking.
    public var requester: RequesterContext
    /// The current stored state. Use ``effectiveState(at:)`` to account for expiry.
    public var state: LoginState
    /// The account that scanned, once scanned.
    public var accountId: String?
    /// The scanner's display name, shown to the PC after the scan.
    public var scannerDisplayName: String?
    /// The device (key thumbprint) that scanned.
    public var scannerDeviceId: String?
    /// SHA-256 of the one-time scan ticket.
    public var ticketHash: String?
    /// When the scan ticket stops working.
    public var ticketExpiresAt: Date?
    /// The number the PC shows and the phone must pick.
    public var match: Int?
    /// The three numbers offered on the phone, in display order.
    public var matchChoices: [Int]
    /// Why the request was denied, if it was.
    public var denyReason: DenyReason?
    /// The token most recently handed to the PC; revoked when the PC collects again.
    public var tokenId: String?
    /// When the request was created.
    public var createdAt: Date
    /// When the request stops being usable (pending, scanned or for pickup after confirm).
    public var expiresAt: Date
    /// Bumped by every transition; stores use it for conditional updates.
    public var version: Int
    /// For a request made through the OAuth device authorization endpoint: the client, scopes,
    /// user code and polling state. Such a request's poll secret is the device code, its PC key
    /// (when the device sent a DPoP proof) the key its tokens are bound to, and the phone picks
    /// the user code instead of a number.
    public var deviceGrant: DeviceGrant?
    /// For a QR login that is the login screen of an OpenID Connect sign-in: the app and scopes.
    public var app: AppSignIn?
    /// The number of the PC's newest read, where the store keeps it (PostgreSQL, so that every
    /// instance agrees on which read may collect the token); 0 in stores whose server keeps it in
    /// memory. No transition changes it.
    public var pickupGeneration: UInt64 = 0

    /// Creates a new pending request.
    public init(id: String, pollSecretHash: String, pcKeyThumbprint: String, pcPublicKeyJWK: String, requester: RequesterContext, createdAt: Date, expiresAt: Date, deviceGrant: DeviceGrant? = nil) {
        self.id = id
        self.pollSecretHash = pollSecretHash
        self.pcKeyThumbprint = pcKeyThumbprint
        self.pcPublicKeyJWK = pcPublicKeyJWK
        self.requester = requester
        self.state = .pending
        self.matchChoices = []
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.version = 0
        self.deviceGrant = deviceGrant
    }

    /// The moment the request expires if nothing else happens: the request's own lifetime, cut
    /// short by an unused scan ticket's lifetime while scanned.
    public var deadline: Date {
        if state == .scanned, let ticketExpiresAt { return min(expiresAt, ticketExpiresAt) }
        return expiresAt
    }

    /// The state as clients see it at `now`: a non-final request past its deadline is `expired`.
    public func effectiveState(at now: Date) -> LoginState {
        if !state.isFinal && now >= deadline { return .expired }
        return state
    }

    /// Marks the request `expired` if it is past its deadline. Returns whether it changed.
    @discardableResult
    public mutating func expireIfDue(at now: Date) -> Bool {
        guard !state.isFinal, now >= deadline else { return false }
        state = .expired
        clearTicket()
        version += 1
        return true
    }

    /// Throws the error that describes why a request in a final state cannot move.
    private func stateError(at now: Date) -> QRLoginError {
        switch effectiveState(at: now) {
        case .expired: .expired
        case let state: .wrongState(state)
        }
    }

    /// pending → scanned: binds the request to the scanning phone's account.
    ///
    /// The phone is offered `matchChoices` (one of them `match`, the number the PC shows), or,
    /// for a device grant, `userCodeChoices` (one of them the grant's user code; the number
    /// arguments are ignored then).
    /// - Throws: ``QRLoginError/expired`` after the deadline, ``QRLoginError/alreadyScanned`` if
    ///   a phone scanned it before, ``QRLoginError/wrongState(_:)`` in any other final state.
    public mutating func scan(accountId: String, displayName: String, deviceId: String, ticketHash: String, ticketExpiresAt: Date, match: Int, matchChoices: [Int], userCodeChoices: [String] = [], at now: Date) throws(QRLoginError) {
        switch effectiveState(at: now) {
        case .pending: break
        case .scanned: throw .alreadyScanned
        default: throw stateError(at: now)
        }
        if let grant = deviceGrant {
            precondition(userCodeChoices.contains(grant.userCode), "the user code must be one of the choices")
            deviceGrant?.userCodeChoices = userCodeChoices
            self.match = nil
            self.matchChoices = []
        } else {
            precondition(matchChoices.contains(match), "the match must be one of the choices")
            self.match = match
            self.matchChoices = matchChoices
        }
        state = .scanned
        self.accountId = accountId
        scannerDisplayName = displayName
        scannerDeviceId = deviceId
        self.ticketHash = ticketHash
        self.ticketExpiresAt = ticketExpiresAt
        version += 1
    }

    /// Checks that `deviceId` is the scanner and `ticketHash` its live ticket.
    private func checkScanner(deviceId: String, accountId: String, ticketHash: String, at now: Date) throws(QRLoginError) {
        switch effectiveState(at: now) {
        case .scanned: break
        case .pending: throw .notScanner
        case .expired:
            // A scanned request that expired through its ticket reports the ticket.
            if state == .scanned { throw .ticketExpired }
            throw .expired
        default: throw stateError(at: now)
        }
        guard deviceId == scannerDeviceId, accountId == self.accountId else { throw .notScanner }
        guard let stored = self.ticketHash, Secrets.constantTimeEquals(stored, ticketHash) else { throw .invalidTicket }
    }

    /// scanned → confirmed with the right number, or scanned → denied with a wrong one.
    ///
    /// A wrong number is not an error of the call: it is a decision, so the request becomes
    /// `denied` with ``DenyReason/wrongMatch`` and the caller reports that.
    /// - Throws: ``QRLoginError/notScanner`` for any device other than the scanner,
    ///   ``QRLoginError/invalidTicket`` for a wrong ticket, ``QRLoginError/ticketExpired`` or
    ///   ``QRLoginError/expired`` late, ``QRLoginError/wrongState(_:)`` once used.
    public mutating func confirm(deviceId: String, accountId: String, ticketHash: String, match: Int, pickupWindow: TimeInterval, at now: Date) throws(QRLoginError) {
        try confirm(deviceId: deviceId, accountId: accountId, ticketHash: ticketHash, pick: .number(match), pickupWindow: pickupWindow, at: now)
    }

    /// What the phone picked: a number (QR login) or a user code (device grant).
    public enum Pick: Sendable, Equatable {
        case number(Int)
        case userCode(String)
    }

    /// scanned → confirmed with the right pick, or scanned → denied with a wrong one (a pick of
    /// the other kind than the request asks for is wrong too). As
    /// ``confirm(deviceId:accountId:ticketHash:match:pickupWindow:at:)``.
    public mutating func confirm(deviceId: String, accountId: String, ticketHash: String, pick: Pick, pickupWindow: TimeInterval, at now: Date) throws(QRLoginError) {
        try checkScanner(deviceId: deviceId, accountId: accountId, ticketHash: ticketHash, at: now)
        clearTicket()
        version += 1
        let right: Bool = switch (pick, deviceGrant) {
        case (.number(let number), nil): number == match
        case (.userCode(let code), let grant?): UserCode.normalize(code) == grant.userCode
        default: false
        }
        guard right else {
            state = .denied
            denyReason = .wrongMatch
            return
        }
        state = .confirmed
        // The PC collects its token after the confirm; give it a full window for that.
        expiresAt = max(expiresAt, now.addingTimeInterval(pickupWindow))
    }

    /// scanned → denied by the scanner.
    /// - Throws: as ``confirm(deviceId:accountId:ticketHash:match:pickupWindow:at:)``.
    public mutating func deny(deviceId: String, accountId: String, ticketHash: String, at now: Date) throws(QRLoginError) {
        try checkScanner(deviceId: deviceId, accountId: accountId, ticketHash: ticketHash, at: now)
        clearTicket()
        state = .denied
        denyReason = .user
        version += 1
    }

    /// pending or scanned → cancelled, by the PC.
    /// - Throws: ``QRLoginError/expired`` late, ``QRLoginError/wrongState(_:)`` when final.
    public mutating func cancel(at now: Date) throws(QRLoginError) {
        guard !effectiveState(at: now).isFinal else { throw stateError(at: now) }
        clearTicket()
        state = .cancelled
        version += 1
    }

    /// Records that a new token (`tokenId`) is handed to the PC. Returns the id of the token
    /// handed out before, which the caller must revoke in the same atomic step, so that at most
    /// one collected token works.
    /// - Throws: ``QRLoginError/expired`` after the pickup window,
    ///   ``QRLoginError/wrongState(_:)`` when not confirmed.
    public mutating func collect(tokenId: String, at now: Date) throws(QRLoginError) -> String? {
        guard state == .confirmed else { throw stateError(at: now) }
        guard now < expiresAt else { throw .expired }
        let previous = self.tokenId
        self.tokenId = tokenId
        version += 1
        return previous
    }

    /// The device's poll of the token endpoint with this request's device code (RFC 8628 §3.4).
    /// Records the poll (so the caller must write the request whatever the outcome) and says
    /// what to answer; on ``DevicePoll/issue`` the tokens are marked handed out, so the caller
    /// writes them in the same atomic step.
    public mutating func pollDeviceGrant(at now: Date) -> DevicePoll {
        guard var grant = deviceGrant else { return .notADeviceGrant }
        defer { deviceGrant = grant; version += 1 }
        switch effectiveState(at: now) {
        case .pending, .scanned:
            if let slowDown = grant.poll(at: now) { return .slowDown(slowDown) }
            return .pending
        case .confirmed:
            grant.lastPolledAt = now
            if grant.issued { return .alreadyIssued }
            guard now < expiresAt else { return .expired }
            grant.issued = true
            return .issue
        case .denied, .cancelled:
            grant.lastPolledAt = now
            return .denied
        case .expired:
            grant.lastPolledAt = now
            return .expired
        }
    }

    private mutating func clearTicket() {
        ticketHash = nil
    }
}

/// What a device's poll of the token endpoint finds (``LoginRequest/pollDeviceGrant(at:)``).
public enum DevicePoll: Sendable, Equatable {
    /// Not scanned or not yet confirmed: `authorization_pending`.
    case pending
    /// Polled sooner than the interval: `slow_down` (the interval is raised).
    case slowDown(OAuthError)
    /// Confirmed: mint and hand out the tokens now (this poll is the one that does).
    case issue
    /// The tokens were handed out before: the device code is used up (`invalid_grant`).
    case alreadyIssued
    /// Denied on the phone or cancelled: `access_denied`.
    case denied
    /// Past its lifetime (or its pickup window): `expired_token`.
    case expired
    /// The request was not made through the device authorization endpoint.
    case notADeviceGrant
}

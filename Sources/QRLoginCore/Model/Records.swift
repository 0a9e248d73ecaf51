import Foundation

/// The kinds of device that can hold a token.
public enum DeviceType: String, Codable, Sendable, CaseIterable {
    case ios, android, pc, web, cli
}

/// How a token was obtained.
public enum TokenOrigin: String, Codable, Sendable {
    case password, sms, qr
}

/// A person's account.
public struct Account: Codable, Sendable, Equatable {
    /// Stable random id.
    public var id: String
    /// Unique login name (case-sensitive as given, compared case-insensitively).
    public var username: String
    /// bcrypt hash of the password.
    public var passwordHash: String
    /// Optional unique phone number in E.164 form, used for one-time-code sign-in.
    public var phone: String?
    /// The name shown to people, e.g. on the PC after a scan.
    public var displayName: String
    /// When the account was created.
    public var createdAt: Date

    /// Creates an account record.
    public init(id: String, username: String, passwordHash: String, phone: String?, displayName: String, createdAt: Date) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.phone = phone
        self.displayName = displayName
        self.createdAt = createdAt
    }
}

/// A device linked to an account; its id is the RFC 7638 thumbprint of its key.
public struct Device: Codable, Sendable, Equatable {
    /// The key thumbprint (base64url SHA-256).
    public var id: String
    /// The account this device is linked to.
    public var accountId: String
    /// The device's kind.
    public var type: DeviceType
    /// The name the device gave itself (client-supplied text; escape wherever shown).
    public var name: String
    /// The public key as a JWK JSON object (canonical members only).
    public var publicKeyJWK: String
    /// When the device was first linked.
    public var createdAt: Date
    /// When the device last made an authenticated request.
    public var lastSeenAt: Date
    /// The client IP seen on the last authenticated request.
    public var lastIP: String
    /// For a device linked by QR login: the device that approved it.
    public var approvedBy: String?

    /// Creates a device record.
    public init(id: String, accountId: String, type: DeviceType, name: String, publicKeyJWK: String, createdAt: Date, lastSeenAt: Date, lastIP: String, approvedBy: String? = nil) {
        self.id = id
        self.accountId = accountId
        self.type = type
        self.name = name
        self.publicKeyJWK = publicKeyJWK
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.lastIP = lastIP
        self.approvedBy = approvedBy
    }
}

/// A device-bound access token. Only the SHA-256 of the secret is kept.
public struct TokenRecord: Codable, Sendable, Equatable {
    /// Random id of the record (not secret).
    public var id: String
    /// SHA-256 (base64url) of the access token.
    public var hash: String
    /// The account the token acts for.
    public var accountId: String
    /// The device (key thumbprint) the token is bound to.
    public var deviceId: String
    /// The kind of that device.
    public var deviceType: DeviceType
    /// How the token was obtained.
    public var origin: TokenOrigin
    /// For `qr` tokens: the device that approved the login.
    public var approvedBy: String?
    /// When the token was issued.
    public var createdAt: Date
    /// When the token stops working.
    public var expiresAt: Date
    /// When the token was revoked, if it was.
    public var revokedAt: Date?

    /// Creates a token record.
    public init(id: String, hash: String, accountId: String, deviceId: String, deviceType: DeviceType, origin: TokenOrigin, approvedBy: String?, createdAt: Date, expiresAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.hash = hash
        self.accountId = accountId
        self.deviceId = deviceId
        self.deviceType = deviceType
        self.origin = origin
        self.approvedBy = approvedBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether the token may be used at `now`.
    public func isActive(at now: Date) -> Bool {
        revokedAt == nil && now < expiresAt
    }
}

/// A pending one-time sign-in code for a phone number. Only a keyed hash of the code is kept.
public struct OneTimeCode: Codable, Sendable, Equatable {
    /// The phone number the code was sent to.
    public var phone: String
    /// HMAC-SHA-256 (base64url) of the code under the server's code key.
    public var codeHash: String
    /// When the code stops working.
    public var expiresAt: Date
    /// Failed attempts so far.
    public var attempts: Int

    /// Creates a code record.
    public init(phone: String, codeHash: String, expiresAt: Date, attempts: Int = 0) {
        self.phone = phone
        self.codeHash = codeHash
        self.expiresAt = expiresAt
        self.attempts = attempts
    }
}

/// The outcome of checking a one-time code.
public enum OneTimeCodeCheck: Sendable, Equatable {
    /// The code matched; it is now used up.
    case accepted
    /// The code did not match; `remaining` attempts are left.
    case rejected(remaining: Int)
    /// No live code exists for the phone (never sent, expired, used, or locked out).
    case missing
    /// This attempt used up the last one; the code is gone.
    case tooManyAttempts
}

import Crypto
import Foundation
import QRLoginCore

/// What a device keeps between runs: its session token and the facts that go with it.
public struct StoredSession: Codable, Sendable, Equatable {
    /// The server the session belongs to.
    public var server: String
    /// The access token (bound to the stored key).
    public var accessToken: String
    /// When it stops working.
    public var expiresAt: Date
    /// The account id.
    public var accountId: String
    /// The account's username, when known.
    public var username: String?
    /// The account's display name, when known.
    public var displayName: String?
    /// This device's id (key thumbprint).
    public var deviceId: String
    /// This device's type.
    public var deviceType: DeviceType

    /// Creates a stored session.
    public init(server: String, accessToken: String, expiresAt: Date, accountId: String, username: String? = nil, displayName: String? = nil, deviceId: String, deviceType: DeviceType) {
        self.server = server
        self.accessToken = accessToken
        self.expiresAt = expiresAt
        self.accountId = accountId
        self.username = username
        self.displayName = displayName
        self.deviceId = deviceId
        self.deviceType = deviceType
    }
}

/// Where a device's key and session live. Pluggable: files by default
/// (``FileCredentialStore``), a keychain or memory elsewhere.
public protocol CredentialStore: Sendable {
    /// The stored key, or nil. Throws when it exists but cannot be read.
    func loadKey() throws -> P256.Signing.PrivateKey?
    /// Stores the key, replacing any other.
    func saveKey(_ key: P256.Signing.PrivateKey) throws
    /// The stored session, or nil. Throws when it exists but cannot be read.
    func loadSession() throws -> StoredSession?
    /// Stores the session, replacing any other.
    func saveSession(_ session: StoredSession) throws
    /// Forgets the session (the key stays).
    func deleteSession() throws
}

extension CredentialStore {
    /// The stored key, or a new one that is stored first.
    /// - Throws: when the store cannot be read or written.
    public func loadOrCreateKey() throws -> P256.Signing.PrivateKey {
        if let key = try loadKey() { return key }
        let key = P256.Signing.PrivateKey()
        try saveKey(key)
        return key
    }
}

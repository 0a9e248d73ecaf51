import Foundation

/// Lifetimes and limits of the login flow. All durations are in seconds.
public struct FlowSettings: Sendable {
    /// How long a new login request waits to be scanned (and confirmed).
    public var requestTTL: TimeInterval = 120
    /// How long a scan ticket stays usable.
    public var ticketTTL: TimeInterval = 60
    /// How long the PC may collect its token after the confirm.
    public var pickupTTL: TimeInterval = 120
    /// How long an access token works.
    public var tokenTTL: TimeInterval = 30 * 24 * 3600
    /// How far a proof's `iat` may be from the server's clock.
    public var proofSkew: TimeInterval = 60
    /// The polling interval suggested to PCs that do not wait.
    public var pollInterval: Int = 2
    /// The longest `?wait=` a PC may ask for.
    public var maxWait: Int = 60
    /// Seconds between SSE heartbeat comments.
    public var heartbeat: TimeInterval = 15
    /// How long a one-time code works.
    public var codeTTL: TimeInterval = 300
    /// Wrong one-time codes allowed before the code is destroyed.
    public var codeAttempts: Int = 5
    /// bcrypt cost factor for password hashes.
    public var bcryptCost: UInt8 = 12
    /// How long after expiry a request is kept before the cleanup deletes it.
    public var retention: TimeInterval = 3600

    /// The defaults described in the README.
    public init() {}
}

/// Lifetimes and switches of the OAuth 2.0 endpoints. Durations are in seconds.
public struct OAuthSettings: Sendable {
    /// How long a device code and its user code work (RFC 8628 `expires_in`).
    public var deviceCodeTTL: TimeInterval = 600
    /// Seconds the device waits between polls of the token endpoint (`interval`).
    public var deviceInterval: Int = 5
    /// How long an OAuth access token works.
    public var accessTokenTTL: TimeInterval = 3600
    /// How long an ID token is valid; also how long a retired signing key stays published.
    public var idTokenTTL: TimeInterval = 3600
    /// How long a refresh token works; every refresh gives a new one.
    public var refreshTokenTTL: TimeInterval = 30 * 24 * 3600
    /// Whether DPoP proofs at the token and device endpoints must carry a server nonce
    /// (RFC 9449 §8).
    public var dpopNonces = false

    /// The defaults described in the README.
    public init() {}
}

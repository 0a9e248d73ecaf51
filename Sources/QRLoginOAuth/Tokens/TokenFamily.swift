import Foundation

/// A grant held by a client for an account: every token issued from one authorization (one
/// device grant, later one authorization code) and its refreshes. Revoking the family revokes
/// them all at once; the user sees each live family as an app that holds tokens.
public struct TokenFamily: Codable, Sendable, Equatable {
    /// Random id (not secret); the grant's id in `/api/v1/grants`.
    public var id: String
    /// The client holding the tokens.
    public var clientId: String
    /// The account the tokens act for.
    public var accountId: String
    /// The scopes granted; refreshes may narrow, never widen.
    public var scopes: [String]
    /// The key refresh tokens are bound to (RFC 7638 thumbprint): set for public clients that
    /// used DPoP (RFC 9449 §5), nil otherwise.
    public var refreshJKT: String?
    /// The grant type that started the family.
    public var origin: GrantType
    /// When the family was started.
    public var createdAt: Date
    /// No token in it expires later; past this the family is dead. Refreshes move it ahead in
    /// steps (``RefreshPolicy/familyExpiry(_:outlivedBy:now:)``), so it may be later than its
    /// newest token's expiry.
    public var expiresAt: Date
    /// When the family was revoked, if it was.
    public var revokedAt: Date?

    /// Creates a family record.
    public init(id: String, clientId: String, accountId: String, scopes: [String], refreshJKT: String?, origin: GrantType, createdAt: Date, expiresAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.clientId = clientId
        self.accountId = accountId
        self.scopes = scopes
        self.refreshJKT = refreshJKT
        self.origin = origin
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether the family is neither revoked nor past its expiry at `now` (an upper bound: its
    /// tokens may all have expired or been used before).
    public func isLive(at now: Date) -> Bool {
        revokedAt == nil && now < expiresAt
    }
}

/// The two kinds of OAuth token.
public enum OAuthTokenKind: String, Codable, Sendable {
    case access, refresh
}

/// An OAuth access or refresh token. Only the SHA-256 of the secret is kept.
public struct OAuthToken: Codable, Sendable, Equatable {
    /// Random id (not secret).
    public var id: String
    /// Access or refresh.
    public var kind: OAuthTokenKind
    /// SHA-256 (base64url) of the token.
    public var hash: String
    /// The family it belongs to.
    public var familyId: String
    /// The scopes it carries.
    public var scopes: [String]
    /// For a DPoP-bound access token: the thumbprint of its key (`cnf.jkt`).
    public var jkt: String?
    /// When it was issued.
    public var createdAt: Date
    /// When it stops working.
    public var expiresAt: Date
    /// For a refresh token: when it was exchanged (a second use is a replay).
    public var usedAt: Date?
    /// When it was revoked on its own (a family's revocation is kept on the family).
    public var revokedAt: Date?

    /// Creates a token record.
    public init(id: String, kind: OAuthTokenKind, hash: String, familyId: String, scopes: [String], jkt: String?, createdAt: Date, expiresAt: Date, usedAt: Date? = nil, revokedAt: Date? = nil) {
        self.id = id
        self.kind = kind
        self.hash = hash
        self.familyId = familyId
        self.scopes = scopes
        self.jkt = jkt
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
        self.revokedAt = revokedAt
    }

    /// Whether the token works at `now` within `family`: not revoked, not expired, not used up
    /// (refresh), and its family live.
    public func isActive(in family: TokenFamily, at now: Date) -> Bool {
        revokedAt == nil && usedAt == nil && now < expiresAt && family.revokedAt == nil
    }
}

/// A family with its first tokens, written together when a grant is first redeemed.
public struct IssuedGrant: Sendable, Equatable {
    /// The new family.
    public var family: TokenFamily
    /// Its first access token and, with `offline_access`, its first refresh token.
    public var tokens: [OAuthToken]

    /// Groups a new family with its tokens.
    public init(family: TokenFamily, tokens: [OAuthToken]) {
        self.family = family
        self.tokens = tokens
    }
}

/// An OAuth token looked up by its hash, with what introspection reports about it.
public struct OAuthTokenLookup: Sendable, Equatable {
    /// The token.
    public var token: OAuthToken
    /// Its family.
    public var family: TokenFamily
    /// The username of the account it acts for.
    public var username: String

    /// Groups a token with its family and username.
    public init(token: OAuthToken, family: TokenFamily, username: String) {
        self.token = token
        self.family = family
        self.username = username
    }
}

/// What a store does with a presented refresh token, as ``RefreshPolicy`` decides.
public enum RefreshDecision: Sendable, Equatable {
    /// Mark the presented token used, insert these tokens, and move the family's expiry to
    /// `familyExpiresAt` (nil: it already outlives them).
    case rotate(tokens: [OAuthToken], familyExpiresAt: Date?)
    /// The token was used before: a replay. Revoke the whole family (RFC 6749 §10.4, RFC 9700 §4.14.2).
    case revokeFamily
}

/// What revoking a token by its hash found (RFC 7009).
public enum OAuthRevocation: Sendable, Equatable {
    /// No such token: the endpoint still answers 200.
    case unknown
    /// The token belongs to another client; nothing changed.
    case otherClient
    /// An access token, now revoked.
    case accessToken
    /// A refresh token: its whole family is now revoked.
    case family
}

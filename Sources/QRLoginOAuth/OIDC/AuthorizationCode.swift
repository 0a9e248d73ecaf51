import Foundation

/// An authorization code (RFC 6749 §4.1.2): single-use, short-lived, bound to the client, the
/// redirect URI, the PKCE challenge and the DPoP key the request named. Only its hash is kept.
public struct AuthorizationCode: Codable, Sendable, Equatable {
    /// SHA-256 (base64url) of the code.
    public var hash: String
    public var clientId: String
    public var accountId: String
    public var redirectURI: String
    public var scopes: [String]
    public var nonce: String?
    public var codeChallenge: String?
    /// `dpop_jkt` of the request: only a proof of this key may redeem the code (RFC 9449 §10).
    public var dpopJKT: String?
    /// When the user authenticated (`auth_time`).
    public var authTime: Date
    /// How (`amr`): `qr`, `pwd`, `otp`.
    public var amr: [String]
    /// The browser session the login made or used (`sid`).
    public var sessionId: String?
    public var createdAt: Date
    public var expiresAt: Date
    /// When it was redeemed; a second redemption is refused and revokes what the first issued.
    public var usedAt: Date?
    /// The token family the redemption started.
    public var familyId: String?

    /// Creates a code record.
    public init(hash: String, clientId: String, accountId: String, redirectURI: String, scopes: [String], nonce: String?, codeChallenge: String?, dpopJKT: String?, authTime: Date, amr: [String], sessionId: String?, createdAt: Date, expiresAt: Date) {
        self.hash = hash
        self.clientId = clientId
        self.accountId = accountId
        self.redirectURI = redirectURI
        self.scopes = scopes
        self.nonce = nonce
        self.codeChallenge = codeChallenge
        self.dpopJKT = dpopJKT
        self.authTime = authTime
        self.amr = amr
        self.sessionId = sessionId
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// What a store does with a presented authorization code, as ``CodeRedemptionRules`` decide.
public enum CodeRedemption: Sendable, Equatable {
    /// Mark the code used and write this family and its tokens.
    case issue(IssuedGrant)
    /// The code was used before: revoke the family its first redemption started (RFC 6749
    /// §4.1.2), and refuse.
    case revokeIssued
}

/// The token request rules for `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9449 §10).
public enum CodeRedemptionRules {
    /// Decides what `code` becomes for a request by `clientId` with `redirectURI`, PKCE
    /// `verifier` and a proof of key `proofJKT`.
    /// - Throws: `invalid_grant` (another client's, expired, wrong redirect URI or verifier),
    ///   `invalid_dpop_proof` (not the key `dpop_jkt` named). Nothing is written then.
    public static func decide(
        _ code: AuthorizationCode, clientId: String, redirectURI: String?, verifier: String?, proofJKT: String?, now: Date,
        mint: () -> IssuedGrant
    ) throws(OAuthError) -> CodeRedemption {
        guard code.clientId == clientId else { throw .invalidGrant("the code is invalid, expired or was issued to another client") }
        if code.usedAt != nil { return .revokeIssued }
        guard now < code.expiresAt else { throw .invalidGrant("the code is invalid, expired or was issued to another client") }
        guard redirectURI == code.redirectURI else { throw .invalidGrant("redirect_uri differs from the authorization request's") }
        if let challenge = code.codeChallenge {
            guard let verifier, PKCE.verify(verifier, challenge: challenge) else { throw .invalidGrant("the PKCE code_verifier does not match") }
        } else if verifier != nil {
            throw .invalidGrant("the authorization request had no code_challenge")
        }
        if let bound = code.dpopJKT, bound != proofJKT {
            throw OAuthError(.invalidDPoPProof, "the code is bound to a DPoP key (dpop_jkt); prove possession of that key")
        }
        return .issue(mint())
    }
}

/// A signed-in browser: the single sign-on session behind the `__Host-qrlogin_session` cookie.
/// Only the hash of the cookie's secret is kept.
public struct BrowserSession: Codable, Sendable, Equatable {
    /// Random public id (`sid` in ID tokens).
    public var id: String
    /// SHA-256 (base64url) of the cookie's secret.
    public var secretHash: String
    public var accountId: String
    /// The browser's device (its key's thumbprint) when it signed in by QR: remote logout of
    /// that device ends the session.
    public var deviceId: String?
    public var authTime: Date
    public var amr: [String]
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    /// Creates a session record.
    public init(id: String, secretHash: String, accountId: String, deviceId: String?, authTime: Date, amr: [String], createdAt: Date, expiresAt: Date, revokedAt: Date? = nil) {
        self.id = id
        self.secretHash = secretHash
        self.accountId = accountId
        self.deviceId = deviceId
        self.authTime = authTime
        self.amr = amr
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Whether the session still signs the browser in at `now`.
    public func isLive(at now: Date) -> Bool {
        revokedAt == nil && now < expiresAt
    }

    /// Whether the session satisfies `max_age` at `now` (OpenID Connect Core §3.1.2.1).
    public func satisfies(maxAge: Int?, at now: Date) -> Bool {
        guard let maxAge else { return true }
        return now.timeIntervalSince(authTime) <= Double(maxAge)
    }
}

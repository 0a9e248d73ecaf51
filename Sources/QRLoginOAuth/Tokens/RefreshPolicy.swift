import Foundation

/// The rules of the refresh grant (RFC 6749 §6, RFC 9449 §5), as a pure function a store runs
/// inside its atomic step.
public enum RefreshPolicy {
    /// Decides what happens to refresh token `token` of `family`, presented by `clientId` with
    /// a DPoP proof of key `proofJKT` (nil: no proof), asking for `requestedScopes` (empty: the
    /// same as before).
    ///
    /// - Returns: ``RefreshDecision/revokeFamily`` for a token already exchanged (the caller
    ///   answers `invalid_grant`), or the new tokens made by `mint` from the scopes the new
    ///   access token carries (the request's, or the old ones) and the scopes the new refresh
    ///   token carries (always the old token's, RFC 6749 §6).
    /// - Throws: `invalid_grant` for another client's, a revoked, an expired token or a proof of
    ///   the wrong key for a key-bound family; `invalid_scope` for a scope not granted before.
    ///   Nothing is written then.
    public static func decide(
        token: OAuthToken, family: TokenFamily, clientId: String, proofJKT: String?, requestedScopes: [String], now: Date,
        mint: (_ accessScopes: [String], _ refreshScopes: [String]) -> (tokens: [OAuthToken], expiresAt: Date)
    ) throws(OAuthError) -> RefreshDecision {
        guard token.kind == .refresh, family.clientId == clientId else {
            throw .invalidGrant("the refresh token is invalid, expired or revoked")
        }
        guard token.revokedAt == nil, family.revokedAt == nil, now < token.expiresAt else {
            throw .invalidGrant("the refresh token is invalid, expired or revoked")
        }
        if token.usedAt != nil { return .revokeFamily }
        if let bound = family.refreshJKT, bound != proofJKT {
            throw .invalidGrant("the refresh token is bound to another DPoP key")
        }
        let scopes = requestedScopes.isEmpty ? token.scopes : requestedScopes
        if let wider = scopes.first(where: { !token.scopes.contains($0) }) {
            throw .invalidScope("the scope '\(wider)' was not granted")
        }
        let minted = mint(scopes, token.scopes)
        return .rotate(tokens: minted.tokens, familyExpiresAt: familyExpiry(family.expiresAt, outlivedBy: minted.expiresAt, now: now))
    }

    /// The family's new expiry when a token expiring at `newest` joins a family that expires at
    /// `current`, or nil when the family already outlives the token (the usual case).
    ///
    /// A family must outlive its tokens, but it need not expire with its newest one: when it
    /// must move, it moves past `newest` by 1/32 of the token's lifetime (about a day for
    /// 30-day refresh tokens), so most refreshes leave the family's row and its expiry index
    /// alone, and a refresh writes fewer database pages. Its expiry is then an upper bound;
    /// whether it still holds a token that works is read from its tokens.
    public static func familyExpiry(_ current: Date, outlivedBy newest: Date, now: Date) -> Date? {
        guard newest > current else { return nil }
        return newest.addingTimeInterval(max(0, newest.timeIntervalSince(now)) / 32)
    }
}

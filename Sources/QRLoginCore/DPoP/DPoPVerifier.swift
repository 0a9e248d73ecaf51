import Crypto
import Foundation

// INTERFACE ONLY — to be implemented (see the bodies marked fatalError).

/// A verified DPoP proof: who signed it (the key) and what it said.
public struct DPoPProof: Sendable, Equatable {
    /// RFC 7638 thumbprint of the proof's key (base64url SHA-256): the device id.
    public var thumbprint: String
    /// The public key as canonical JWK JSON: `{"crv":"P-256","kty":"EC","x":"…","y":"…"}`.
    public var publicKeyJWK: String
    /// The proof's unique id.
    public var jti: String
    /// When the proof says it was made.
    public var issuedAt: Date
}

/// Remembers proof ids for the acceptance window, so a replayed proof is refused.
/// In-process now; a shared implementation can back several server instances later.
public protocol ReplayCache: Sendable {
    /// Records `key` until `expiresAt`. Returns `false` if `key` is already recorded and has
    /// not expired at `now` (a replay), `true` if it was new.
    func insert(_ key: String, expiresAt: Date, now: Date) async -> Bool
}

/// Verifies RFC 9449 DPoP proofs: ES256 only, `typ` `dpop+jwt`, a public P-256 `jwk`,
/// matching `htm`/`htu`, fresh `iat`, unseen `jti`, and `ath` when a token is presented.
public struct DPoPVerifier: Sendable {
    /// Creates a verifier. `publicBaseURL` is the server's configured public URL (for `htu`).
    public init(publicBaseURL: String, maxClockSkew: TimeInterval = 60, replayCache: any ReplayCache, clock: any NowClock) {
        fatalError("unimplemented")
    }

    /// Verifies `proof` for a request with `method` to `path` (no query), optionally presenting
    /// `accessToken` (or poll secret).
    /// - Throws: ``QRLoginError/invalidProof(_:)`` naming the failed check, or
    ///   ``QRLoginError/replayedProof``.
    public func verify(proof: String?, method: String, path: String, accessToken: String?) async throws(QRLoginError) -> DPoPProof {
        fatalError("unimplemented")
    }
}

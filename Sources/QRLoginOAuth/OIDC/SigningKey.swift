import Foundation

/// The algorithms ID tokens are signed with: ES256 by default, RS256 for relying parties that
/// expect it (OpenID Connect Core §15.1 makes RS256 mandatory for providers).
public enum SigningAlgorithm: String, Codable, Sendable, CaseIterable {
    case es256 = "ES256"
    case rs256 = "RS256"
}

/// A key that signs ID tokens. The newest active key of each algorithm signs; a retired key
/// signs nothing more but stays in the JWKS until every token it signed has expired, so relying
/// parties can still check those.
///
/// The private key is kept as PEM in the store: unlike a token it must be usable, not just
/// recognisable, so it cannot be hashed. Whoever can read the database can sign ID tokens.
public struct SigningKey: Codable, Sendable, Equatable {
    /// The key id (`kid`), unique, random.
    public var kid: String
    /// ES256 or RS256.
    public var algorithm: SigningAlgorithm
    /// The private key, PEM.
    public var privateKeyPEM: String
    /// When the key was made.
    public var createdAt: Date
    /// When a newer key took over signing; nil while it is the one that signs.
    public var retiredAt: Date?

    /// Creates a key record.
    public init(kid: String, algorithm: SigningAlgorithm, privateKeyPEM: String, createdAt: Date, retiredAt: Date? = nil) {
        self.kid = kid
        self.algorithm = algorithm
        self.privateKeyPEM = privateKeyPEM
        self.createdAt = createdAt
        self.retiredAt = retiredAt
    }

    /// Whether relying parties still need this key at `now`: it signs, or it retired less than
    /// `tokenLifetime` ago (the longest a token it signed can live).
    public func isPublished(at now: Date, tokenLifetime: TimeInterval) -> Bool {
        guard let retiredAt else { return true }
        return now < retiredAt.addingTimeInterval(tokenLifetime)
    }
}

/// Which key of a set signs now.
public enum SigningKeySelection {
    /// The newest key of `algorithm` that is not retired.
    public static func signer(of algorithm: SigningAlgorithm, in keys: [SigningKey]) -> SigningKey? {
        keys.filter { $0.algorithm == algorithm && $0.retiredAt == nil }.max { ($0.createdAt, $0.kid) < ($1.createdAt, $1.kid) }
    }

    /// The key of `algorithm` to sign with at `now` when servers that share the keys may take up
    /// to `propagation` seconds to read a new one: a key is published before it is used. A key
    /// younger than that leaves the signing to the key it replaced (retired the moment it was
    /// made), so a token never carries a `kid` that another server's JWKS does not have yet. With
    /// no predecessor (the first key), the new key signs at once.
    public static func signer(of algorithm: SigningAlgorithm, in keys: [SigningKey], at now: Date, propagation: TimeInterval) -> SigningKey? {
        guard let newest = signer(of: algorithm, in: keys) else { return nil }
        guard now.timeIntervalSince(newest.createdAt) < propagation else { return newest }
        let predecessor = keys.filter { $0.algorithm == algorithm && $0.retiredAt == newest.createdAt }
            .max { ($0.createdAt, $0.kid) < ($1.createdAt, $1.kid) }
        return predecessor ?? newest
    }
}

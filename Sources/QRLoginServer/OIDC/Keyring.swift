// ID tokens are JWS, signed and serialised with vapor/jwt-kit (ES256 and RS256). DPoP proofs
// stay on their own small verifier (see DPoPVerifier): a proof carries its own key, which
// jwt-kit's key collections are not made for.

import Crypto
import CryptoExtras
import Foundation
import JWTKit
import Logging
import QRLoginCore
import QRLoginOAuth
import Synchronization

/// The keys that sign ID tokens, read from the store. A key made by `qrlogin keys rotate` (on
/// this process or any other on the same database) is picked up within ``refreshInterval``, and
/// signs only once it is older than ``propagation``: by then every instance publishes it in its
/// JWKS. Until then the previous key, which stays published, still signs.
final class Keyring: Sendable {
    /// How long a loaded key set is used before the store is read again.
    static let refreshInterval: TimeInterval = 30
    /// How old a new key must be before it signs: every instance's reload, plus a margin for
    /// clocks that differ a little between machines.
    static let propagation: TimeInterval = refreshInterval + 10

    private struct Loaded: Sendable {
        var at: Date
        var keys: [SigningKey]
        var collection: JWTKeyCollection
        /// The public JWK of every key loaded into `collection`, by kid: made once per load, not
        /// per JWKS request (reading an RSA key's PEM is not cheap).
        var publicKeys: [String: PublicJWK]
    }

    private let store: any Store
    private let clock: any NowClock
    /// The longest an ID token lives: a retired key stays published that long.
    let tokenLifetime: TimeInterval
    private let loaded = Mutex<Loaded?>(nil)

    init(store: any Store, clock: any NowClock, tokenLifetime: TimeInterval) {
        self.store = store
        self.clock = clock
        self.tokenLifetime = tokenLifetime
    }

    /// Makes a signing key for every algorithm that has none (on first start), then loads them.
    /// - Throws: a storage fault, or a key the store holds that cannot be read.
    func ensureKeys(logger: Logger) async throws {
        let existing = try await store.signingKeys()
        for algorithm in SigningAlgorithm.allCases where SigningKeySelection.signer(of: algorithm, in: existing) == nil {
            let key = try Self.generate(algorithm, at: clock.now)
            try await store.addSigningKey(key)
            logger.info("made an ID token signing key", metadata: ["qrlogin.kid": "\(key.kid)", "qrlogin.alg": "\(algorithm.rawValue)"])
        }
        _ = try await current(forceReload: true)
    }

    /// A new key of `algorithm` with a random `kid`.
    /// - Throws: if the system cannot make an RSA key.
    static func generate(_ algorithm: SigningAlgorithm, at now: Date) throws -> SigningKey {
        let pem: String = switch algorithm {
        case .es256: ES256PrivateKey().pemRepresentation
        case .rs256: try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048)).pemRepresentation
        }
        return SigningKey(kid: algorithm.rawValue.lowercased() + "-" + Secrets.publicId(), algorithm: algorithm, privateKeyPEM: pem, createdAt: now)
    }

    /// Signs `claims` with the newest active key of `algorithm`.
    /// - Throws: when there is no such key (``ensureKeys(logger:)`` makes them), or signing fails.
    func sign(_ claims: IDTokenClaims, algorithm: SigningAlgorithm) async throws -> String {
        let keys = try await current()
        guard let signer = SigningKeySelection.signer(of: algorithm, in: keys.keys, at: clock.now, propagation: Self.propagation) else {
            throw KeyringError.noKey(algorithm)
        }
        return try await keys.collection.sign(SignedClaims(claims: claims), kid: JWKIdentifier(string: signer.kid))
    }

    /// The claims of an ID token this server signed with a key it still publishes, whether or not
    /// the token has expired (for `id_token_hint`); nil for anything else.
    func claimsOfOwnToken(_ token: String) async -> IDTokenClaims? {
        guard token.utf8.count <= 8192, let keys = try? await current() else { return nil }
        return try? await keys.collection.verify(token, as: SignedClaims.self).claims
    }

    /// The public keys relying parties may need now: every active key and every key retired less
    /// than one token lifetime ago.
    func jwks() async throws -> [PublicJWK] {
        let now = clock.now
        let loaded = try await current()
        return loaded.keys.filter { $0.isPublished(at: now, tokenLifetime: tokenLifetime) }.compactMap { loaded.publicKeys[$0.kid] }
    }

    private func current(forceReload: Bool = false) async throws -> Loaded {
        let now = clock.now
        if !forceReload, let loaded = loaded.withLock({ $0 }), now.timeIntervalSince(loaded.at) < Self.refreshInterval, now >= loaded.at {
            return loaded
        }
        let keys = try await store.signingKeys()
        let collection = JWTKeyCollection()
        var publicKeys: [String: PublicJWK] = [:]
        for key in keys where key.isPublished(at: now, tokenLifetime: tokenLifetime) {
            publicKeys[key.kid] = try Self.publicJWK(key)
            let kid = JWKIdentifier(string: key.kid)
            switch key.algorithm {
            case .es256: await collection.add(ecdsa: try ES256PrivateKey(pem: key.privateKeyPEM), kid: kid, serializer: Self.serializer)
            case .rs256: await collection.add(rsa: try Insecure.RSA.PrivateKey(pem: key.privateKeyPEM), digestAlgorithm: .sha256, kid: kid, serializer: Self.serializer)
            }
        }
        let fresh = Loaded(at: now, keys: keys, collection: collection, publicKeys: publicKeys)
        loaded.withLock { $0 = fresh }
        return fresh
    }

    /// Whole-second dates and unescaped slashes (`"iss":"https://…"`), as relying parties expect.
    private static var serializer: DefaultJWTSerializer {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = .withoutEscapingSlashes
        return DefaultJWTSerializer(jsonEncoder: encoder)
    }

    /// The public half of `key` as a JWK (RFC 7517), with `kid`, `alg` and `use`.
    static func publicJWK(_ key: SigningKey) throws -> PublicJWK {
        switch key.algorithm {
        case .es256:
            let point = try P256.Signing.PrivateKey(pemRepresentation: key.privateKeyPEM).publicKey.x963Representation
            return PublicJWK(kty: "EC", alg: key.algorithm.rawValue, kid: key.kid, crv: "P-256",
                             x: Base64URL.encode(Array(point[1..<33])), y: Base64URL.encode(Array(point[33..<65])))
        case .rs256:
            let (modulus, exponent) = try Insecure.RSA.PrivateKey(pem: key.privateKeyPEM).publicKey.getKeyPrimitives()
            return PublicJWK(kty: "RSA", alg: key.algorithm.rawValue, kid: key.kid, n: Base64URL.encode(Array(modulus)), e: Base64URL.encode(Array(exponent)))
        }
    }
}

/// A public JWK as the JWKS document lists it.
struct PublicJWK: Codable, Sendable, Equatable {
    var kty: String
    var use = "sig"
    var alg: String
    var kid: String
    var crv: String?
    var x: String?
    var y: String?
    var n: String?
    var e: String?

    init(kty: String, alg: String, kid: String, crv: String? = nil, x: String? = nil, y: String? = nil, n: String? = nil, e: String? = nil) {
        self.kty = kty
        self.alg = alg
        self.kid = kid
        self.crv = crv
        self.x = x
        self.y = y
        self.n = n
        self.e = e
    }
}

/// ID token claims as a jwt-kit payload. Checks on the way in are the relying party's; the
/// server only signs, so `verify` has nothing to check.
struct SignedClaims: JWTPayload {
    var claims: IDTokenClaims

    init(claims: IDTokenClaims) {
        self.claims = claims
    }

    init(from decoder: any Decoder) throws {
        claims = try IDTokenClaims(from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        try claims.encode(to: encoder)
    }

    func verify(using algorithm: some JWTAlgorithm) throws {}
}

/// Why the keyring cannot sign.
enum KeyringError: Error, CustomStringConvertible {
    case noKey(SigningAlgorithm)

    var description: String {
        switch self {
        case .noKey(let algorithm): "no active \(algorithm.rawValue) signing key (run `qrlogin keys rotate`)"
        }
    }
}

/// Makes signing keys, for `qrlogin keys rotate` and the first start.
public enum KeyMaker {
    /// A new key of `algorithm` with a random `kid`, made at `now`.
    /// - Throws: if the system cannot make an RSA key.
    public static func generate(_ algorithm: SigningAlgorithm, at now: Date) throws -> SigningKey {
        try Keyring.generate(algorithm, at: now)
    }
}

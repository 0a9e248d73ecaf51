import Crypto
import Foundation

/// A registered OAuth client: an app that signs its users in with QRLogin.
public struct OAuthClient: Codable, Sendable, Equatable {
    /// The client id (`client_id`), unique.
    public var id: String
    /// The name the phone shows when the client asks for a login.
    public var name: String
    /// Public or confidential.
    public var type: ClientType
    /// SHA-256 (base64url) of the secret, for confidential clients; the secret itself is shown
    /// once and never stored. 256 random bits need no slow hash.
    public var secretHash: String?
    /// Redirect URIs, compared character for character.
    public var redirectURIs: [String]
    /// The grants the client may use.
    public var grantTypes: [GrantType]
    /// Scopes the client may ask for beyond the standard ones (``Scope/standard``).
    public var scopes: [String]
    /// Whether every token of this client must be DPoP-bound (`dpop_bound_access_tokens`).
    public var requireDPoP: Bool
    /// The algorithm of this client's ID tokens (`id_token_signed_response_alg`).
    public var idTokenAlgorithm: SigningAlgorithm
    /// Where RP-initiated logout may send the browser back to (exact match).
    public var postLogoutRedirectURIs: [String]
    /// Whether authorization requests must be pushed first (RFC 9126
    /// `require_pushed_authorization_requests`).
    public var requirePAR: Bool
    /// When the client was registered.
    public var createdAt: Date

    /// Creates a client record.
    public init(
        id: String, name: String, type: ClientType, secretHash: String?, redirectURIs: [String] = [],
        grantTypes: [GrantType], scopes: [String] = [], requireDPoP: Bool = false, idTokenAlgorithm: SigningAlgorithm = .es256,
        postLogoutRedirectURIs: [String] = [], requirePAR: Bool = false, createdAt: Date
    ) {
        self.requirePAR = requirePAR
        self.postLogoutRedirectURIs = postLogoutRedirectURIs
        self.idTokenAlgorithm = idTokenAlgorithm
        self.id = id
        self.name = name
        self.type = type
        self.secretHash = secretHash
        self.redirectURIs = redirectURIs
        self.grantTypes = grantTypes
        self.scopes = scopes
        self.requireDPoP = requireDPoP
        self.createdAt = createdAt
    }

    /// Every scope this client may ask for: the standard ones and its own.
    public var allowedScopes: [String] {
        Scope.standard.map(\.name) + scopes.filter { name in !Scope.standard.contains { $0.name == name } }
    }

    /// Checks that `requested` is within what the client may ask for.
    /// - Throws: `invalid_scope` naming the first scope it may not ask for.
    public func checkScopes(_ requested: [String]) throws(OAuthError) {
        let allowed = allowedScopes
        if let refused = requested.first(where: { !allowed.contains($0) }) {
            throw .invalidScope("this client may not ask for the scope '\(refused)'")
        }
    }

    /// Checks that the client may use `grant`.
    /// - Throws: `unauthorized_client`.
    public func checkGrant(_ grant: GrantType) throws(OAuthError) {
        guard grantTypes.contains(grant) else {
            throw OAuthError(.unauthorizedClient, "this client may not use the \(grant.shortName) grant")
        }
    }

    /// Whether `secret` is this client's secret, compared in constant time.
    public func secretMatches(_ secret: String) -> Bool {
        guard let secretHash else { return false }
        return ClientSecret.constantTimeEquals(secretHash, ClientSecret.hash(secret))
    }
}

/// Client secrets: 256 random bits with a readable prefix, stored as SHA-256.
public enum ClientSecret {
    /// The prefix of every client secret, so a leaked one is easy to spot.
    public static let prefix = "qrl_cs_"

    /// A new secret: the prefix and 256 random bits, base64url.
    public static func generate() -> String {
        let key = SymmetricKey(size: .bits256)
        return prefix + key.withUnsafeBytes { base64URL(Data($0)) }
    }

    /// SHA-256 of `secret`'s UTF-8 bytes, base64url: what is stored.
    public static func hash(_ secret: String) -> String {
        base64URL(Data(SHA256.hash(data: Data(secret.utf8))))
    }

    /// Compares two strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    /// Unpadded base64url over bytes (a client's secret is hashed on every request it makes).
    /// QRLoginCore's `Base64URL` does the same for the rest of the server; this target cannot use
    /// it (QRLoginCore depends on this one), and routing Core's hot paths through a generic here
    /// would cost them the specialisation they get now.
    static func base64URL(_ data: Data) -> String {
        let alphabet = base64URLAlphabet
        var output: [UInt8] = []
        output.reserveCapacity((data.count * 4 + 2) / 3)
        var iterator = data.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next(), b2 = iterator.next()
            output.append(alphabet[Int(b0 >> 2)])
            output.append(alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            guard let b1 else { break }
            output.append(alphabet[Int((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)])
            guard let b2 else { break }
            output.append(alphabet[Int(b2 & 0x3F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static let base64URLAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
}

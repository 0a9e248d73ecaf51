import Crypto
import Foundation

/// Makes RFC 9449 DPoP proofs with a device's P-256 key, as clients send them.
public struct DPoPSigner: Sendable {
    /// The device key.
    public let privateKey: P256.Signing.PrivateKey
    /// The public key as canonical JWK JSON (RFC 7638 member order, no whitespace).
    public let publicKeyJWK: String
    /// The RFC 7638 thumbprint of the key: the device id the server will assign.
    public let thumbprint: String
    /// The encoded JOSE header, the same for every proof of this key.
    private let encodedHeader: String

    /// Creates a signer for `privateKey`, or for a fresh random key.
    public init(privateKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) {
        self.privateKey = privateKey
        let raw = privateKey.publicKey.rawRepresentation
        publicKeyJWK = canonicalP256JWK(x: Base64URL.encode(raw.prefix(32)), y: Base64URL.encode(raw.suffix(32)))
        thumbprint = DPoPVerifier.thumbprint(ofCanonicalJWK: publicKeyJWK)
        encodedHeader = Base64URL.encode(Array(#"{"typ":"dpop+jwt","alg":"ES256","jwk":"# .utf8) + Array(publicKeyJWK.utf8) + [UInt8(ascii: "}")])
    }

    /// A proof for one request: `method` and `url` (query and fragment are ignored by servers),
    /// with `ath` when `accessToken` is given and `nonce` when the server asked for one
    /// (RFC 9449 §8). Use a new `jti` for every request.
    /// - Throws: if signing fails.
    public func proof(method: String, url: String, accessToken: String? = nil, issuedAt: Date = Date(), jti: String = DPoPSigner.randomJTI(), nonce: String? = nil) throws -> String {
        let claims = Claims(
            jti: jti, htm: method, htu: url,
            iat: Int(issuedAt.timeIntervalSince1970.rounded(.down)),
            ath: accessToken.map(DPoPVerifier.ath(for:)), nonce: nonce
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let payload = try encoder.encode(claims)
        return try Self.sign(encodedHeader: encodedHeader, encodedPayload: Base64URL.encode(payload), key: privateKey)
    }

    /// Signs arbitrary header and payload JSON bytes as a compact ES256 JWS, with no checks at
    /// all: for tests and tools that need proofs a verifier must refuse.
    /// - Throws: if signing fails.
    public static func sign(headerJSON: Data, payloadJSON: Data, key: P256.Signing.PrivateKey) throws -> String {
        try sign(encodedHeader: Base64URL.encode(headerJSON), encodedPayload: Base64URL.encode(payloadJSON), key: key)
    }

    /// 16 random bytes, base64url: a `jti` that never repeats in practice.
    public static func randomJTI() -> String {
        Base64URL.encode(Secrets.randomBytes(16))
    }

    private static func sign(encodedHeader: String, encodedPayload: String, key: P256.Signing.PrivateKey) throws -> String {
        let signingInput = encodedHeader + "." + encodedPayload
        let signature = try key.signature(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature.rawRepresentation)
    }

    private struct Claims: Encodable {
        var jti: String
        var htm: String
        var htu: String
        var iat: Int
        var ath: String?
        var nonce: String?
    }
}

import Crypto
import Foundation

/// The claims of an ID token (OpenID Connect Core §2, §3.1.3.6, §5.1). Plain values: the server
/// signs them. Nil claims are left out.
public struct IDTokenClaims: Codable, Sendable, Equatable {
    public var iss: String
    public var sub: String
    public var aud: String
    public var exp: Int
    public var iat: Int
    public var authTime: Int?
    public var nonce: String?
    public var amr: [String]?
    public var azp: String?
    public var atHash: String?
    public var sid: String?
    public var name: String?
    public var preferredUsername: String?
    public var phoneNumber: String?
    public var phoneNumberVerified: Bool?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, iat, nonce, amr, azp, sid, name
        case authTime = "auth_time", atHash = "at_hash"
        case preferredUsername = "preferred_username", phoneNumber = "phone_number"
        case phoneNumberVerified = "phone_number_verified"
    }

    /// The required claims; the rest are set by the caller as they apply.
    public init(iss: String, sub: String, aud: String, issuedAt: Date, lifetime: TimeInterval) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.iat = Int(issuedAt.timeIntervalSince1970.rounded(.down))
        self.exp = iat + Int(lifetime)
    }

    /// `at_hash` (Core §3.1.3.6): the left half of the SHA-256 of the access token, base64url,
    /// for ES256 and RS256 alike.
    public static func atHash(for accessToken: String) -> String {
        ClientSecret.base64URL(Data(Array(SHA256.hash(data: Data(accessToken.utf8))).prefix(16)))
    }
}

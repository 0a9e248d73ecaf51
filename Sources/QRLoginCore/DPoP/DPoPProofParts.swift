/// The JOSE header of a DPoP proof. Every member is optional here so that a missing member
/// yields the specific rejection reason instead of a generic decoding failure.
struct DPoPHeader: Decodable {
    var alg: String?
    var typ: String?
    var jwk: DPoPJWK?
    /// Critical extensions we do not understand must make the proof invalid (RFC 7515 §4.1.11);
    /// we understand none, so its mere presence is enough to reject.
    var hasCrit: Bool

    private enum CodingKeys: String, CodingKey {
        case alg, typ, jwk, crit
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        alg = try container.decodeIfPresent(String.self, forKey: .alg)
        typ = try container.decodeIfPresent(String.self, forKey: .typ)
        jwk = try container.decodeIfPresent(DPoPJWK.self, forKey: .jwk)
        hasCrit = container.contains(.crit)
    }
}

/// The `jwk` header member. Private members are only detected, never read: a proof that
/// ships a private key is rejected outright, since its key is compromised by construction.
struct DPoPJWK: Decodable {
    var kty: String?
    var crv: String?
    var x: String?
    var y: String?
    var hasPrivateMembers: Bool

    private enum CodingKeys: String, CodingKey {
        case kty, crv, x, y
        case d, p, q, dp, dq, qi, k, oth
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kty = try container.decodeIfPresent(String.self, forKey: .kty)
        crv = try container.decodeIfPresent(String.self, forKey: .crv)
        x = try container.decodeIfPresent(String.self, forKey: .x)
        y = try container.decodeIfPresent(String.self, forKey: .y)
        let privateMembers: [CodingKeys] = [.d, .p, .q, .dp, .dq, .qi, .k, .oth]
        hasPrivateMembers = privateMembers.contains { container.contains($0) }
    }
}

/// The claims of a DPoP proof. `iat` is a `Double` because NumericDate may carry a fraction;
/// a string there fails decoding and the proof is malformed.
struct DPoPClaims: Decodable {
    var htm: String?
    var htu: String?
    var iat: Double?
    var jti: String?
    var ath: String?
}

/// The canonical JWK of a P-256 key: the required members in lexicographic order with no
/// whitespace, which is both what RFC 7638 hashes and how the key is stored.
func canonicalP256JWK(x: String, y: String) -> String {
    #"{"crv":"P-256","kty":"EC","x":""# + x + #"","y":""# + y + #""}"#
}

import Foundation

/// The JOSE header of a DPoP proof. Members are optional here so that a missing one yields its
/// specific rejection reason; a member of the wrong JSON type makes the proof malformed.
struct DPoPHeader {
    var alg: String?
    var typ: String?
    var jwk: DPoPJWK?
    /// Critical extensions we do not understand must make the proof invalid (RFC 7515 §4.1.11);
    /// we understand none, so the member's mere presence is enough to reject.
    var hasCrit: Bool

    init(json: [UInt8]) throws(QRLoginError) {
        let object = try ProofJSON.proofPart(json)
        alg = try object.string("alg")
        typ = try object.string("typ")
        jwk = try object.object("jwk").map(DPoPJWK.init)
        hasCrit = object.contains("crit")
    }
}

/// The `jwk` header member. Private members are only detected, never read: a proof that
/// ships a private key is rejected outright, since that key is compromised by construction.
struct DPoPJWK {
    private static let privateMembers = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"]

    var kty: String?
    var crv: String?
    var x: String?
    var y: String?
    var hasPrivateMembers: Bool

    init(_ object: ProofJSON) throws(QRLoginError) {
        kty = try object.string("kty")
        crv = try object.string("crv")
        x = try object.string("x")
        y = try object.string("y")
        hasPrivateMembers = Self.privateMembers.contains { object.contains($0) }
    }
}

/// The claims of a DPoP proof. `iat` is a `Double` because a NumericDate may carry a fraction.
struct DPoPClaims {
    var htm: String?
    var htu: String?
    var iat: Double?
    var jti: String?
    var ath: String?
    var nonce: String?

    init(json: [UInt8]) throws(QRLoginError) {
        let object = try ProofJSON.proofPart(json)
        htm = try object.string("htm")
        htu = try object.string("htu")
        iat = try object.number("iat")
        jti = try object.string("jti")
        ath = try object.string("ath")
        nonce = try object.string("nonce")
    }
}

/// Typed access to a proof's JSON members: one of another JSON type than the one asked for
/// makes the proof malformed.
extension ProofJSON {
    /// Parses `bytes`, or throws: a proof whose header or claims are not a JSON object is malformed.
    static func proofPart(_ bytes: [UInt8]) throws(QRLoginError) -> ProofJSON {
        guard let json = ProofJSON(bytes) else { throw .invalidProof("malformed") }
        return json
    }

    func contains(_ key: String) -> Bool {
        self[key] != nil
    }

    func string(_ key: String) throws(QRLoginError) -> String? {
        guard let value = self[key] else { return nil }
        guard case .string(let string) = value else { throw .invalidProof("malformed") }
        return string
    }

    func number(_ key: String) throws(QRLoginError) -> Double? {
        guard let value = self[key] else { return nil }
        guard case .number(let number) = value else { throw .invalidProof("malformed") }
        return number
    }

    func object(_ key: String) throws(QRLoginError) -> ProofJSON? {
        guard let value = self[key] else { return nil }
        guard case .object(let object) = value else { throw .invalidProof("malformed") }
        return object
    }
}

/// The canonical JWK of a P-256 key: the required members in lexicographic order with no
/// whitespace, which is both what RFC 7638 hashes and how the key is stored.
func canonicalP256JWK(x: String, y: String) -> String {
    #"{"crv":"P-256","kty":"EC","x":""# + x + #"","y":""# + y + #""}"#
}

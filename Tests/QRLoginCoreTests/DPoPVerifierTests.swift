import Crypto
import Foundation
@testable import QRLoginCore
import Testing

/// A verifier on a manual clock, a signer, and helpers to craft hostile proofs.
private struct Fixture {
    static let baseURL = "https://login.example.com"
    static let path = "/api/v1/me"
    static let url = baseURL + path

    let clock = ManualClock()
    let cache = MemoryReplayCache()
    let signer = DPoPSigner()
    let verifier: DPoPVerifier

    init(baseURL: String = Fixture.baseURL) {
        verifier = DPoPVerifier(publicBaseURL: baseURL, maxClockSkew: 60, replayCache: cache, clock: clock)
    }

    func proof(method: String = "GET", url: String = Fixture.url, accessToken: String? = nil, issuedAt: Date? = nil, jti: String = DPoPSigner.randomJTI()) throws -> String {
        try signer.proof(method: method, url: url, accessToken: accessToken, issuedAt: issuedAt ?? clock.now, jti: jti)
    }

    @discardableResult
    func verify(_ proof: String?, method: String = "GET", path: String = Fixture.path, accessToken: String? = nil) async throws -> DPoPProof {
        try await verifier.verify(proof: proof, method: method, path: path, accessToken: accessToken)
    }

    var publicJWK: [String: Any] {
        let raw = signer.privateKey.publicKey.rawRepresentation
        return ["kty": "EC", "crv": "P-256", "x": Base64URL.encode(raw.prefix(32)), "y": Base64URL.encode(raw.suffix(32))]
    }

    var header: [String: Any] { ["typ": "dpop+jwt", "alg": "ES256", "jwk": publicJWK] }

    var claims: [String: Any] {
        ["jti": DPoPSigner.randomJTI(), "htm": "GET", "htu": Fixture.url, "iat": Int(clock.now.timeIntervalSince1970)]
    }

    /// Signs any header and claims with the fixture's key, whatever they say.
    func hostile(header: [String: Any]? = nil, claims: [String: Any]? = nil) throws -> String {
        try DPoPSigner.sign(
            headerJSON: JSONSerialization.data(withJSONObject: header ?? self.header),
            payloadJSON: JSONSerialization.data(withJSONObject: claims ?? self.claims),
            key: signer.privateKey
        )
    }

    func hostileHeader(_ edit: (inout [String: Any]) -> Void) throws -> String {
        var header = self.header
        edit(&header)
        return try hostile(header: header)
    }

    func hostileClaims(_ edit: (inout [String: Any]) -> Void) throws -> String {
        var claims = self.claims
        edit(&claims)
        return try hostile(claims: claims)
    }
}

private func invalid(_ reason: String) -> QRLoginError { .invalidProof(reason) }

private func b64(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }

@Suite("DPoP proof verification")
struct DPoPVerifierTests {
    @Test func validProofYieldsKeyAndThumbprint() async throws {
        let f = Fixture()
        let proof = try await f.verify(f.proof(jti: "abc"))
        #expect(proof.thumbprint == f.signer.thumbprint)
        #expect(proof.publicKeyJWK == f.signer.publicKeyJWK)
        #expect(proof.jti == "abc")
        #expect(proof.issuedAt == Date(timeIntervalSince1970: f.clock.now.timeIntervalSince1970.rounded(.down)))
    }

    @Test func validProofWithAccessToken() async throws {
        let f = Fixture()
        try await f.verify(f.proof(accessToken: "qrl_at_token"), accessToken: "qrl_at_token")
    }

    @Test func rfc9449ExampleProofVerifies() async throws {
        // The proof of RFC 9449 §4.1 (Figure 3); its key's thumbprint is the `jkt` of §6.1.
        let proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
        let clock = ManualClock(Date(timeIntervalSince1970: 1_562_262_616))
        let verifier = DPoPVerifier(publicBaseURL: "https://server.example.com", replayCache: MemoryReplayCache(), clock: clock)
        let verified = try await verifier.verify(proof: proof, method: "POST", path: "/token", accessToken: nil)
        #expect(verified.thumbprint == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        #expect(verified.publicKeyJWK == #"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#)
        #expect(verified.jti == "-BwC3ESc6acc2lTc")
    }

    @Test func thumbprintVector() {
        // RFC 7638 §3.1 procedure on the EC key of RFC 9449 §4.1; the expected value is the
        // `jkt` that RFC 9449 §6.1 gives for that key.
        let jwk = #"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#
        #expect(DPoPVerifier.thumbprint(ofCanonicalJWK: jwk) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    }

    @Test func signerThumbprintMatchesItsJWK() {
        let signer = DPoPSigner()
        #expect(signer.thumbprint == DPoPVerifier.thumbprint(ofCanonicalJWK: signer.publicKeyJWK))
        #expect(signer.publicKeyJWK.hasPrefix(#"{"crv":"P-256","kty":"EC","x":""#))
        #expect(!signer.publicKeyJWK.contains(" "))
    }

    @Test func missingProof() async throws {
        let f = Fixture()
        await #expect(throws: invalid("missing DPoP header")) { try await f.verify(nil) }
        await #expect(throws: invalid("missing DPoP header")) { try await f.verify("") }
    }

    @Test(arguments: ["HS256", "RS256", "ES384", "ES512", "PS256", "EdDSA", "es256", "none", ""])
    func wrongAlgorithm(alg: String) async throws {
        let f = Fixture()
        let proof = try f.hostileHeader { $0["alg"] = alg }
        await #expect(throws: invalid("alg must be ES256")) { try await f.verify(proof) }
    }

    @Test func missingAlgorithm() async throws {
        let f = Fixture()
        let proof = try f.hostileHeader { $0["alg"] = nil }
        await #expect(throws: invalid("alg must be ES256")) { try await f.verify(proof) }
    }

    @Test func algNoneUnsigned() async throws {
        let f = Fixture()
        var header = f.header
        header["alg"] = "none"
        let encodedHeader = try Base64URL.encode(JSONSerialization.data(withJSONObject: header))
        let encodedClaims = try Base64URL.encode(JSONSerialization.data(withJSONObject: f.claims))
        await #expect(throws: invalid("alg must be ES256")) { try await f.verify(encodedHeader + "." + encodedClaims + ".") }
    }

    @Test func es256HeaderWithEmptySignature() async throws {
        let f = Fixture()
        let unsigned = try f.proof().split(separator: ".").prefix(2).joined(separator: ".") + "."
        await #expect(throws: invalid("bad signature")) { try await f.verify(unsigned) }
    }

    @Test(arguments: ["JWT", "jwt", "DPOP+JWT", "dpop", "at+jwt"])
    func wrongType(typ: String) async throws {
        let f = Fixture()
        let proof = try f.hostileHeader { $0["typ"] = typ }
        await #expect(throws: invalid("typ must be dpop+jwt")) { try await f.verify(proof) }
    }

    @Test func missingType() async throws {
        let f = Fixture()
        let proof = try f.hostileHeader { $0["typ"] = nil }
        await #expect(throws: invalid("typ must be dpop+jwt")) { try await f.verify(proof) }
    }

    @Test func criticalHeaderRejected() async throws {
        let f = Fixture()
        let proof = try f.hostileHeader { $0["crit"] = ["exp"] }
        await #expect(throws: invalid("unsupported crit header")) { try await f.verify(proof) }
    }

    @Test(arguments: ["d", "p", "q", "dp", "dq", "qi", "k"])
    func privateMemberInJWK(member: String) async throws {
        let f = Fixture()
        let d = Base64URL.encode(f.signer.privateKey.rawRepresentation)
        let proof = try f.hostileHeader { header in
            var jwk = f.publicJWK
            jwk[member] = d
            header["jwk"] = jwk
        }
        await #expect(throws: invalid("jwk must be a public P-256 key")) { try await f.verify(proof) }
    }

    @Test(arguments: [
        ("no jwk", nil),
        ("RSA key type", ["kty": "RSA"]),
        ("P-384 curve", ["crv": "P-384"]),
        ("short x", ["x": Base64URL.encode([UInt8](repeating: 1, count: 31))]),
        ("long y", ["y": Base64URL.encode([UInt8](repeating: 1, count: 33))]),
        ("point off the curve", ["y": Base64URL.encode([UInt8](repeating: 7, count: 32))]),
        ("padded x", ["x": "PADDED"]),
    ] as [(String, [String: String]?)])
    func notAPublicP256Key(name: String, change: [String: String]?) async throws {
        let f = Fixture()
        let proof = try f.hostileHeader { header in
            guard let change else {
                header["jwk"] = nil
                return
            }
            var jwk = f.publicJWK
            for (member, value) in change {
                jwk[member] = value == "PADDED" ? (jwk["x"] as! String) + "=" : value
            }
            header["jwk"] = jwk
        }
        await #expect(throws: invalid("jwk must be a public P-256 key")) { try await f.verify(proof) }
    }

    @Test(arguments: [("POST", "GET"), ("GET", "POST"), ("post", "POST"), ("DELETE", "GET")])
    func wrongMethod(signed: String, requested: String) async throws {
        let f = Fixture()
        let proof = try f.proof(method: signed)
        await #expect(throws: invalid("htm mismatch")) { try await f.verify(proof, method: requested) }
    }

    @Test(arguments: [
        "https://evil.example.com/api/v1/me",
        "https://login.example.com/api/v1/devices",
        "http://localhost:8080/api/v1/me",
        "http://login.example.com/api/v1/me",
        "https://login.example.com:8443/api/v1/me",
        "https://login.example.com/api/v1/me/",
        "https://login.example.com",
        "/api/v1/me",
    ])
    func wrongURL(htu: String) async throws {
        let f = Fixture()
        let proof = try f.proof(url: htu)
        await #expect(throws: invalid("htu mismatch")) { try await f.verify(proof) }
    }

    @Test func missingURL() async throws {
        let f = Fixture()
        let proof = try f.hostileClaims { $0["htu"] = nil }
        await #expect(throws: invalid("htu mismatch")) { try await f.verify(proof) }
    }

    @Test(arguments: ["?wait=30", "#top", "?state=pending&wait=5#x"])
    func queryAndFragmentIgnored(suffix: String) async throws {
        let f = Fixture()
        try await f.verify(f.proof(url: Fixture.url + suffix))
    }

    @Test func baseURLTrailingSlashTrimmed() async throws {
        let f = Fixture(baseURL: Fixture.baseURL + "/")
        try await f.verify(f.proof())
    }

    @Test(arguments: [-61.0, 61.0, -3600, 86_400])
    func iatOutsideWindow(offset: TimeInterval) async throws {
        let f = Fixture()
        let proof = try f.proof(issuedAt: f.clock.now.addingTimeInterval(offset))
        await #expect(throws: invalid("iat outside the accepted window")) { try await f.verify(proof) }
    }

    @Test(arguments: [-60.0, -30, 0, 30, 60])
    func iatWithinSkew(offset: TimeInterval) async throws {
        let f = Fixture()
        try await f.verify(f.proof(issuedAt: f.clock.now.addingTimeInterval(offset)))
    }

    @Test func staleAfterClockMoves() async throws {
        let f = Fixture()
        let proof = try f.proof()
        f.clock.advance(by: 61)
        await #expect(throws: invalid("iat outside the accepted window")) { try await f.verify(proof) }
    }

    /// At the last instant of its window a proof still passes the iat check, so its record must
    /// not have expired yet: a replay then is refused, and only after the window is it stale.
    @Test(arguments: [0.0, 60])
    func aReplayAtTheWindowsLastInstantIsRefused(offset: TimeInterval) async throws {
        let f = Fixture()
        let issued = f.clock.now.addingTimeInterval(offset)
        let proof = try f.proof(issuedAt: issued)
        try await f.verify(proof)
        f.clock.advance(by: issued.timeIntervalSince(f.clock.now) + 60)
        await #expect(throws: QRLoginError.replayedProof) { try await f.verify(proof) }
        f.clock.advance(by: 1)
        await #expect(throws: invalid("iat outside the accepted window")) { try await f.verify(proof) }
    }

    @Test func iatMustBeANumber() async throws {
        let f = Fixture()
        let asString = try f.hostileClaims { $0["iat"] = String(Int(f.clock.now.timeIntervalSince1970)) }
        await #expect(throws: invalid("malformed")) { try await f.verify(asString) }
        let asBool = try f.hostileClaims { $0["iat"] = true }
        await #expect(throws: invalid("malformed")) { try await f.verify(asBool) }
        let missing = try f.hostileClaims { $0["iat"] = nil }
        await #expect(throws: invalid("iat outside the accepted window")) { try await f.verify(missing) }
    }

    @Test func fractionalIatAccepted() async throws {
        let f = Fixture()
        let proof = try f.hostileClaims { $0["iat"] = f.clock.now.timeIntervalSince1970 - 0.5 }
        let verified = try await f.verify(proof)
        #expect(verified.issuedAt == f.clock.now.addingTimeInterval(-0.5))
    }

    @Test func replayedJTIRejectedNewOnePasses() async throws {
        let f = Fixture()
        let proof = try f.proof(jti: "once")
        try await f.verify(proof)
        await #expect(throws: QRLoginError.replayedProof) { try await f.verify(proof) }
        let resigned = try f.proof(jti: "once")
        await #expect(throws: QRLoginError.replayedProof) { try await f.verify(resigned) }
        // A jti seen in the window is refused whatever the new proof's iat (RFC 9449 §11.1).
        let backdated = try f.proof(issuedAt: f.clock.now.addingTimeInterval(-5), jti: "once")
        await #expect(throws: QRLoginError.replayedProof) { try await f.verify(backdated) }
        try await f.verify(f.proof(jti: "twice"))
    }

    @Test func sameJTIFromAnotherKeyIsNotAReplay() async throws {
        let f = Fixture()
        try await f.verify(f.proof(jti: "shared"))
        let other = DPoPSigner()
        try await f.verify(other.proof(method: "GET", url: Fixture.url, issuedAt: f.clock.now, jti: "shared"))
    }

    @Test func rejectedProofDoesNotBurnItsJTI() async throws {
        let f = Fixture()
        await #expect(throws: invalid("htm mismatch")) { try await f.verify(f.proof(jti: "j"), method: "POST") }
        try await f.verify(f.proof(jti: "j"))
    }

    @Test(arguments: ["", String(repeating: "j", count: 257)])
    func badJTI(jti: String) async throws {
        let f = Fixture()
        let proof = try f.proof(jti: jti)
        await #expect(throws: invalid("jti must be a non-empty string of at most 256 bytes")) { try await f.verify(proof) }
    }

    @Test func longestJTIAccepted() async throws {
        let f = Fixture()
        try await f.verify(f.proof(jti: String(repeating: "j", count: 256)))
    }

    @Test func wrongAccessTokenHash() async throws {
        let f = Fixture()
        let proof = try f.proof(accessToken: "qrl_at_other")
        await #expect(throws: invalid("ath mismatch")) { try await f.verify(proof, accessToken: "qrl_at_token") }
    }

    @Test func missingAccessTokenHash() async throws {
        let f = Fixture()
        let proof = try f.proof()
        await #expect(throws: invalid("missing ath")) { try await f.verify(proof, accessToken: "qrl_at_token") }
    }

    @Test func athIgnoredWithoutToken() async throws {
        let f = Fixture()
        try await f.verify(f.proof(accessToken: "qrl_at_token"))
    }

    @Test func athIsBase64URLSHA256() {
        // SHA-256("abc") = ba7816bf…; its base64url form, independent of our encoder.
        #expect(DPoPVerifier.ath(for: "abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0")
    }

    @Test func tamperedSignature() async throws {
        let f = Fixture()
        var parts = try f.proof().split(separator: ".").map(String.init)
        var signature = Array(parts[2].utf8)
        signature[10] = signature[10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        parts[2] = String(decoding: signature, as: UTF8.self)
        await #expect(throws: invalid("bad signature")) { try await f.verify(parts.joined(separator: ".")) }
    }

    @Test func signatureFromAnotherKey() async throws {
        let f = Fixture()
        let mine = try f.proof().split(separator: ".")
        let theirs = try DPoPSigner().proof(method: "GET", url: Fixture.url, issuedAt: f.clock.now).split(separator: ".")
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(mine[0]).\(mine[1]).\(theirs[2])") }
    }

    @Test func shortSignature() async throws {
        let f = Fixture()
        let parts = try f.proof().split(separator: ".")
        let short = Base64URL.encode([UInt8](repeating: 1, count: 63))
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(parts[0]).\(parts[1]).\(short)") }
    }

    @Test func tamperedPayload() async throws {
        let f = Fixture()
        let parts = try f.proof(method: "GET").split(separator: ".")
        let forged = try Base64URL.encode(JSONSerialization.data(withJSONObject: f.claims.merging(["htm": "DELETE"]) { $1 }))
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(parts[0]).\(forged).\(parts[2])", method: "DELETE") }
    }

    /// A header seen before is looked up instead of parsed again; every check after it still
    /// runs, on every proof.
    @Test func knownHeaderStillNeedsItsOwnSignatureAndClaims() async throws {
        let f = Fixture()
        let other = DPoPSigner()
        try await f.verify(f.proof())
        try await f.verifier.verify(proof: other.proof(method: "GET", url: Fixture.url, issuedAt: f.clock.now), method: "GET", path: Fixture.path, accessToken: nil)
        #expect(f.verifier.checkedHeaderCount == 2)

        let parts = try f.proof().split(separator: ".")
        let theirs = try other.proof(method: "GET", url: Fixture.url, issuedAt: f.clock.now).split(separator: ".")
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(parts[0]).\(parts[1]).\(theirs[2])") }
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(theirs[0]).\(parts[1]).\(parts[2])") }
        let forged = try Base64URL.encode(JSONSerialization.data(withJSONObject: f.claims.merging(["htm": "DELETE"]) { $1 }))
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(parts[0]).\(forged).\(parts[2])", method: "DELETE") }
        await #expect(throws: invalid("htm mismatch")) { try await f.verify(f.proof(), method: "POST") }
        await #expect(throws: invalid("missing ath")) { try await f.verify(f.proof(), accessToken: "token") }
        let once = try f.proof()
        try await f.verify(once)
        await #expect(throws: QRLoginError.replayedProof) { try await f.verify(once) }
        #expect(try await f.verify(f.proof()).thumbprint == f.signer.thumbprint)
    }

    /// A refused header is never remembered, and the cache does not grow past its bound however
    /// many keys a client makes up.
    @Test func headerCacheHoldsOnlyCheckedHeadersAndIsBounded() async throws {
        let f = Fixture()
        await #expect(throws: invalid("typ must be dpop+jwt")) { try await f.verify(f.hostileHeader { $0["typ"] = "JWT" }) }
        #expect(f.verifier.checkedHeaderCount == 0)
        for _ in 0..<(CheckedHeaders.capacity + 10) {
            let signer = DPoPSigner()
            try await f.verifier.verify(proof: signer.proof(method: "GET", url: Fixture.url, issuedAt: f.clock.now), method: "GET", path: Fixture.path, accessToken: nil)
        }
        #expect(f.verifier.checkedHeaderCount <= CheckedHeaders.capacity)
        #expect(f.verifier.checkedHeaderCount > 0)
    }

    @Test func tamperedHeaderKey() async throws {
        let f = Fixture()
        let parts = try f.proof().split(separator: ".")
        let other = DPoPSigner()
        let swapped = b64(#"{"typ":"dpop+jwt","alg":"ES256","jwk":"# + other.publicKeyJWK + "}")
        await #expect(throws: invalid("bad signature")) { try await f.verify("\(swapped).\(parts[1]).\(parts[2])") }
    }

    @Test(arguments: [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!.e30.AAAA",
        "e30=.e30.AAAA",
        "\(b64("{")).e30.AAAA",
        "\(b64("[]")).e30.AAAA",
        "\(b64(#"{"alg":5}"#)).e30.AAAA",
    ])
    func malformed(proof: String) async throws {
        let f = Fixture()
        await #expect(throws: invalid("malformed")) { try await f.verify(proof) }
    }

    @Test func signedButUnparseablePayload() async throws {
        let f = Fixture()
        let proof = try DPoPSigner.sign(
            headerJSON: JSONSerialization.data(withJSONObject: f.header),
            payloadJSON: Data("not json".utf8),
            key: f.signer.privateKey
        )
        await #expect(throws: invalid("malformed")) { try await f.verify(proof) }
    }

    @Test func oversizedProof() async throws {
        let f = Fixture()
        let proof = try f.proof(url: Fixture.url + "?pad=" + String(repeating: "x", count: 9000))
        await #expect(throws: invalid("proof too large")) { try await f.verify(proof) }
        await #expect(throws: invalid("proof too large")) { try await f.verify(String(repeating: "A", count: DPoPVerifier.maxProofLength + 1)) }
    }
}

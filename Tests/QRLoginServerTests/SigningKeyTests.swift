import Foundation
import HTTPTypes
import JWTKit
import Logging
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Testing

/// The keys that sign ID tokens: made on first start, published in the JWKS, rotated.
@Suite struct SigningKeyServerTests {
    /// Claims that jwt-kit checks on the way in, as a relying party would.
    struct CheckedClaims: JWTPayload {
        var iss: IssuerClaim
        var sub: SubjectClaim
        var aud: AudienceClaim
        var exp: ExpirationClaim
        var nonce: String?

        func verify(using algorithm: some JWTAlgorithm) throws {
            try exp.verifyNotExpired()
        }
    }

    /// The same claims with no check of their own: only the signature decides.
    struct SignatureOnly: JWTPayload {
        var sub: SubjectClaim

        func verify(using algorithm: some JWTAlgorithm) throws {}
    }

    @Test func theFirstStartMakesOneKeyPerAlgorithmAndTheJWKSPublishesThem() async throws {
        let store = MemoryStore()
        try await Keyring(store: store, clock: SystemClock(), tokenLifetime: 3600).ensureKeys(logger: Logger(label: "test"))
        try await withAPI(store: store) { api, _ in
            let keys = try await store.signingKeys()
            #expect(Set(keys.map(\.algorithm)) == [.es256, .rs256])
            let reply = try await api.call(.get, "/oauth/jwks")
            #expect(reply.status == .ok)
            let published = try #require(reply["keys"] as? [[String: Any]])
            #expect(Set(published.compactMap { $0["kid"] as? String }) == Set(keys.map(\.kid)))
            for jwk in published {
                #expect(jwk["use"] as? String == "sig")
                #expect(jwk["d"] == nil && jwk["p"] == nil, "no private members")
                switch jwk["alg"] as? String {
                case "ES256": #expect(jwk["kty"] as? String == "EC" && jwk["crv"] as? String == "P-256" && (jwk["x"] as? String)?.count == 43)
                case "RS256": #expect(jwk["kty"] as? String == "RSA" && jwk["e"] as? String == "AQAB" && (jwk["n"] as? String)?.count == 342)
                default: Issue.record("unexpected alg \(String(describing: jwk["alg"]))")
                }
            }
        }
        // A restart on the same store keeps the keys.
        let before = try await store.signingKeys()
        _ = try await makeTestApp(store: store)
        #expect(try await store.signingKeys() == before)
    }

    @Test(arguments: SigningAlgorithm.allCases)
    func aSignedTokenChecksAgainstThePublishedJWKS(algorithm: SigningAlgorithm) async throws {
        let store = MemoryStore()
        let clock = ManualClock(Date())
        let keyring = Keyring(store: store, clock: clock, tokenLifetime: 600)
        try await keyring.ensureKeys(logger: Logger(label: "test"))
        var claims = IDTokenClaims(iss: testBaseURL, sub: "acc-1", aud: "cli", issuedAt: clock.now, lifetime: 600)
        claims.nonce = "n-0S6"
        let token = try await keyring.sign(claims, algorithm: algorithm)

        let verifier = JWTKeyCollection()
        try await verifier.add(jwksJSON: try jwksJSON(keyring))
        let checked = try await verifier.verify(token, as: CheckedClaims.self)
        #expect(checked.iss.value == testBaseURL)
        #expect(checked.aud.value == ["cli"])
        #expect(checked.nonce == "n-0S6")
        let header = try #require(Data(base64URL: String(token.split(separator: ".")[0])))
        let object = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        #expect(object["alg"] as? String == algorithm.rawValue)
        let signer = SigningKeySelection.signer(of: algorithm, in: try await store.signingKeys())
        #expect(object["kid"] as? String == signer?.kid)
    }

    @Test func aNewKeySignsOnlyOnceEveryInstanceCanHavePublishedIt() async throws {
        let store = MemoryStore()
        let clock = ManualClock(Date())
        let (a, b) = (Keyring(store: store, clock: clock, tokenLifetime: 600), Keyring(store: store, clock: clock, tokenLifetime: 600))
        try await a.ensureKeys(logger: Logger(label: "test"))
        clock.advance(by: Keyring.refreshInterval - 1)
        try await b.ensureKeys(logger: Logger(label: "test"))
        // Instance B read the keys just before the rotation; A reads them just after.
        clock.advance(by: 1)
        try await store.addSigningKey(try KeyMaker.generate(.es256, at: clock.now))
        clock.advance(by: 1)
        let claims = IDTokenClaims(iss: testBaseURL, sub: "a", aud: "cli", issuedAt: clock.now, lifetime: 600)
        let signedByA = try await a.sign(claims, algorithm: .es256)
        let staleJWKS = JWTKeyCollection()
        try await staleJWKS.add(jwksJSON: try jwksJSON(b))
        _ = try await staleJWKS.verify(signedByA, as: CheckedClaims.self)

        // Once the new key is older than the propagation time, it signs, and B publishes it.
        clock.advance(by: Keyring.propagation)
        let later = try await a.sign(IDTokenClaims(iss: testBaseURL, sub: "a", aud: "cli", issuedAt: clock.now, lifetime: 600), algorithm: .es256)
        #expect(kid(of: later) != kid(of: signedByA))
        let fresh = JWTKeyCollection()
        try await fresh.add(jwksJSON: try jwksJSON(b))
        _ = try await fresh.verify(later, as: CheckedClaims.self)
    }

    @Test func aRotatedKeyStaysPublishedUntilItsTokensExpireAndTheNewOneSigns() async throws {
        let store = MemoryStore()
        let clock = ManualClock(Date())
        let keyring = Keyring(store: store, clock: clock, tokenLifetime: 600)
        try await keyring.ensureKeys(logger: Logger(label: "test"))
        let old = try await keyring.sign(IDTokenClaims(iss: testBaseURL, sub: "a", aud: "cli", issuedAt: clock.now, lifetime: 600), algorithm: .es256)

        try await store.addSigningKey(try KeyMaker.generate(.es256, at: clock.now))
        clock.advance(by: Keyring.propagation + 1)
        let new = try await keyring.sign(IDTokenClaims(iss: testBaseURL, sub: "a", aud: "cli", issuedAt: clock.now, lifetime: 600), algorithm: .es256)
        #expect(kid(of: old) != kid(of: new), "the new key signs once every instance has had time to publish it")

        let both = JWTKeyCollection()
        try await both.add(jwksJSON: try jwksJSON(keyring))
        _ = try await both.verify(old, as: CheckedClaims.self)
        _ = try await both.verify(new, as: CheckedClaims.self)

        clock.advance(by: 600)
        let published = try await keyring.jwks().map(\.kid)
        #expect(!published.contains(kid(of: old)), "the old key leaves the JWKS once its tokens have expired")
        #expect(published.contains(kid(of: new)))
        let onlyNew = JWTKeyCollection()
        try await onlyNew.add(jwksJSON: try jwksJSON(keyring))
        _ = try await onlyNew.verify(new, as: SignatureOnly.self)
        await #expect(throws: (any Error).self, "the dropped key's signature no longer checks (expiry aside)") {
            _ = try await onlyNew.verify(old, as: SignatureOnly.self)
        }
    }

    private func jwksJSON(_ keyring: Keyring) async throws -> String {
        let encoder = JSONEncoder()
        return String(decoding: try encoder.encode(["keys": try await keyring.jwks()]), as: UTF8.self)
    }

    private func kid(of token: String) -> String {
        let header = Data(base64URL: String(token.split(separator: ".")[0])) ?? Data()
        return ((try? JSONSerialization.jsonObject(with: header)) as? [String: Any])?["kid"] as? String ?? ""
    }
}

extension Data {
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        self.init(base64Encoded: base64)
    }
}

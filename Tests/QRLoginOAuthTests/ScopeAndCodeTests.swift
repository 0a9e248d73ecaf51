import Foundation
import QRLoginOAuth
import Testing

@Suite struct ScopeTests {
    @Test func parsesInOrderWithoutDuplicates() throws {
        #expect(try Scope.parse("openid profile openid offline_access") == ["openid", "profile", "offline_access"])
        #expect(try Scope.parse(nil) == [])
        #expect(try Scope.parse("") == [])
    }

    @Test(arguments: ["openid  profile", " openid", "openid ", "a\"b", "a\\b", "caf\u{e9}", "tab\there", String(repeating: "a", count: 1025)])
    func refusesMalformedScopes(_ value: String) {
        #expect(throws: OAuthError.self) { try Scope.parse(value) }
        do { _ = try Scope.parse(value) } catch { #expect(error.code == .invalidScope) }
    }

    @Test func describesStandardScopesInPlainWords() {
        #expect(Scope.describe("offline_access").contains("signed in"))
        #expect(Scope.describe("billing:read") == "billing:read")
    }
}

@Suite struct UserCodeTests {
    @Test func generatesEightCharactersFromTheAlphabet() {
        for _ in 0..<200 {
            let code = UserCode.generate()
            #expect(code.count == 8)
            #expect(code.allSatisfy(UserCode.alphabet.contains))
        }
    }

    @Test func displaysWithADashAndNormalisesWhatIsTyped() {
        #expect(UserCode.display("BCDFGHJK") == "BCDF-GHJK")
        #expect(UserCode.normalize("bcdf-ghjk") == "BCDFGHJK")
        #expect(UserCode.normalize(" BCDF GHJK ") == "BCDFGHJK")
        #expect(UserCode.normalize("BCDF-GHJ") == nil)
        #expect(UserCode.normalize("ABCD-EFGH") == nil, "vowels are not in the alphabet")
        #expect(UserCode.normalize(String(repeating: "B", count: 100)) == nil)
    }

    @Test func decoysDifferFromTheCodeAndEachOther() {
        let code = UserCode.generate()
        let decoys = UserCode.decoys(for: code)
        #expect(decoys.count == 2)
        #expect(!decoys.contains(code))
        #expect(decoys[0] != decoys[1])
    }
}

@Suite struct DeviceGrantTests {
    @Test func pollingFasterThanTheIntervalSlowsDownByFiveSeconds() {
        var grant = DeviceGrant(clientId: "cli", scopes: ["openid"], userCode: "BCDFGHJK", interval: 5)
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(grant.poll(at: start) == nil)
        #expect(grant.poll(at: start.addingTimeInterval(5)) == nil)
        let tooSoon = grant.poll(at: start.addingTimeInterval(7))
        #expect(tooSoon?.code == .slowDown)
        #expect(grant.interval == 10)
        #expect(grant.lastPolledAt == start.addingTimeInterval(7))
        #expect(grant.poll(at: start.addingTimeInterval(12))?.code == .slowDown, "the raised interval counts from now on")
        #expect(grant.interval == 15)
        #expect(grant.poll(at: start.addingTimeInterval(27)) == nil)
    }
}

@Suite struct ClientTests {
    func client(type: ClientType = .public, secretHash: String? = nil) -> OAuthClient {
        OAuthClient(id: "cli", name: "Terminal", type: type, secretHash: secretHash, grantTypes: [.deviceCode, .refreshToken], scopes: ["billing:read"], createdAt: Date())
    }

    @Test func secretsAreRandomPrefixedAndCheckedByHash() {
        let secret = ClientSecret.generate()
        #expect(secret.hasPrefix("qrl_cs_"))
        #expect(secret.count == 7 + 43)
        #expect(secret != ClientSecret.generate())
        let confidential = client(type: .confidential, secretHash: ClientSecret.hash(secret))
        #expect(confidential.secretMatches(secret))
        #expect(!confidential.secretMatches(secret + "x"))
        #expect(!confidential.secretMatches(ClientSecret.hash(secret)), "the stored hash is not the secret")
        #expect(!client().secretMatches(""), "a public client has no secret to match")
    }

    @Test func scopesAreTheStandardOnesPlusTheClientsOwn() throws {
        let client = client()
        try client.checkScopes(["openid", "offline_access", "billing:read"])
        #expect(throws: OAuthError.invalidScope("this client may not ask for the scope 'admin'")) { try client.checkScopes(["openid", "admin"]) }
        #expect(throws: OAuthError.self) { try client.checkGrant(.authorizationCode) }
        try client.checkGrant(.deviceCode)
    }

    @Test func rulesRefuseBadRecords() throws {
        try ClientRules.validate(client())
        var bad = client()
        bad.id = "has space"
        #expect(throws: OAuthError.self) { try ClientRules.validate(bad) }
        bad = client()
        bad.name = ""
        #expect(throws: OAuthError.self) { try ClientRules.validate(bad) }
        bad = client(type: .confidential)
        #expect(throws: OAuthError.self, "a confidential client needs a secret") { try ClientRules.validate(bad) }
        bad = client(secretHash: "x")
        #expect(throws: OAuthError.self, "a public client has none") { try ClientRules.validate(bad) }
        bad = client()
        bad.grantTypes = [.authorizationCode]
        #expect(throws: OAuthError.self, "the code grant needs a redirect URI") { try ClientRules.validate(bad) }
        bad.redirectURIs = ["https://app.example/cb#frag"]
        #expect(throws: OAuthError.self) { try ClientRules.validate(bad) }
        bad.redirectURIs = ["https://app.example/cb"]
        try ClientRules.validate(bad)
    }

    @Test func grantTypesParseByURIOrShortName() {
        #expect(GrantType(name: "device_code") == .deviceCode)
        #expect(GrantType(name: "urn:ietf:params:oauth:grant-type:device_code") == .deviceCode)
        #expect(GrantType(name: "password") == nil)
    }
}

@Suite struct DPoPNonceTests {
    @Test func acceptsTheCurrentAndPreviousWindowOnly() {
        let nonces = DPoPNonces(window: 60)
        let now = Date(timeIntervalSince1970: 6_000)
        let nonce = nonces.current(at: now)
        #expect(nonces.isValid(nonce, at: now))
        #expect(nonces.isValid(nonce, at: now.addingTimeInterval(60)))
        #expect(!nonces.isValid(nonce, at: now.addingTimeInterval(120)))
        #expect(!nonces.isValid(nil, at: now))
        #expect(!nonces.isValid("", at: now))
        #expect(!nonces.isValid(nonce + "A", at: now))
    }

    @Test func aRestartedServerRefusesEarlierNonces() {
        let now = Date(timeIntervalSince1970: 6_000)
        let before = DPoPNonces(window: 60).current(at: now)
        let after = DPoPNonces(window: 60)
        #expect(!after.isValid(before, at: now))
    }
}

@Suite struct ClientSecretEncodingTests {
    @Test func theSecretHashIsTheBase64URLSHA256() {
        // Expected values computed with Python's hashlib and base64.
        #expect(ClientSecret.hash("qrl_cs_example") == "OwBTPDA6-55LtgsUTV3jN8yRzZXBFuxM9VRbGSe4br8")
        #expect(ClientSecret.hash("") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")
    }
}

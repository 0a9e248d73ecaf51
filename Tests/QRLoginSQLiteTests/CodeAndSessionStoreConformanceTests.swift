import Foundation
import QRLoginCore
import QRLoginOAuth
import Testing

/// Authorization codes and browser sessions, in every ``Store``.
@Suite("Store conformance: authorization codes and sessions")
struct CodeAndSessionStoreConformanceTests {
    private let t0 = Fixtures.t0

    static func code(_ hash: String = "code-hash") -> AuthorizationCode {
        AuthorizationCode(
            hash: hash, clientId: "web", accountId: "acc-1", redirectURI: "https://app.example/cb", scopes: ["openid", "profile"],
            nonce: "n", codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", dpopJKT: nil, authTime: Fixtures.t0,
            amr: ["qr"], sessionId: "sess-1", createdAt: Fixtures.t0, expiresAt: Fixtures.t0.addingTimeInterval(60)
        )
    }

    static func session(_ id: String = "sess-1", device: String? = "dev-1") -> BrowserSession {
        BrowserSession(id: id, secretHash: "secret-\(id)", accountId: "acc-1", deviceId: device, authTime: Fixtures.t0, amr: ["qr"], createdAt: Fixtures.t0, expiresAt: Fixtures.t0.addingTimeInterval(3600))
    }

    @Test(arguments: StoreKind.allCases)
    func aCodeIsRedeemedOnceAndASecondRedemptionRevokesWhatTheFirstIssued(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.insertAuthorizationCode(Self.code())
            let grant = OAuthStoreConformanceTests.grant(family: "fam-code")
            let first = try await store.redeemAuthorizationCode(hash: "code-hash", at: t0.addingTimeInterval(1)) { code in
                #expect(code == Self.code(), "every field round-trips")
                return .issue(grant)
            }
            #expect(first == .issue(grant))
            #expect(try #require(try await store.oauthToken(hash: "hash-fam-code-at", family: "fam-code")).family.revokedAt == nil)
            #expect(try await store.oauthToken(hash: "hash-fam-code-at", family: "fam") == nil, "not under another family")
            let second = try await store.redeemAuthorizationCode(hash: "code-hash", at: t0.addingTimeInterval(2)) { code in
                #expect(code.usedAt == t0.addingTimeInterval(1))
                #expect(code.familyId == "fam-code")
                return .revokeIssued
            }
            #expect(second == .revokeIssued)
            #expect(try await store.oauthToken(hash: "hash-fam-code-at", family: "fam-code")?.family.revokedAt == t0.addingTimeInterval(2))
            #expect(try await store.redeemAuthorizationCode(hash: "nope", at: t0) { _ in .revokeIssued } == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRefusedRedemptionWritesNothingAndConcurrentOnesHaveOneWinner(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.insertAuthorizationCode(Self.code())
            await #expect(throws: OAuthError.self) {
                _ = try await store.redeemAuthorizationCode(hash: "code-hash", at: Fixtures.t0) { _ in throw OAuthError.invalidGrant("no") }
            }
            let results = try await withThrowingTaskGroup(of: CodeRedemption?.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        try await store.redeemAuthorizationCode(hash: "code-hash", at: Fixtures.t0) { code in
                            code.usedAt == nil ? .issue(OAuthStoreConformanceTests.grant(family: "fam-\(index)")) : .revokeIssued
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { if case .issue = $0 { true } else { false } }.count == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func sessionsAreFoundByTheirSecretAndEndByLogoutOrRemoteLogout(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.upsertDevice(Fixtures.device())
            try await store.insertBrowserSession(Self.session())
            try await store.insertBrowserSession(Self.session("sess-2", device: nil))
            #expect(try await store.browserSession(secretHash: "secret-sess-1") == Self.session())
            #expect(try await store.browserSession(secretHash: "secret-nope") == nil)
            #expect(try await store.revokeBrowserSession(id: "sess-2", at: t0) == true)
            #expect(try await store.revokeBrowserSession(id: "sess-2", at: t0) == false)
            #expect(try await store.browserSession(secretHash: "secret-sess-2")?.revokedAt == t0)
            #expect(try await store.removeDevice(id: "dev-1", accountId: "acc-1", at: t0.addingTimeInterval(5)))
            #expect(try await store.browserSession(secretHash: "secret-sess-1")?.revokedAt == t0.addingTimeInterval(5), "remote logout ends the browser's session")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func expiredCodesAndSessionsAreDeleted(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.insertAuthorizationCode(Self.code())
            try await store.insertBrowserSession(Self.session(device: "browser-sess-1"))
            #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(61)) == 1)
            #expect(try await store.redeemAuthorizationCode(hash: "code-hash", at: t0) { _ in .revokeIssued } == nil)
            try await store.upsertDevice(Fixtures.device("browser-sess-1"))
            try await store.upsertDevice(Fixtures.device("dev-1"))
            #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(3601)) == 2, "the session and its stand-in device")
            #expect(try await store.browserSession(secretHash: "secret-sess-1") == nil)
            #expect(try await store.device(id: "browser-sess-1", accountId: "acc-1") == nil)
            #expect(try await store.device(id: "dev-1", accountId: "acc-1") != nil, "a device with a key stays")
        }
    }
}

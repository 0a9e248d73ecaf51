import Foundation
import QRLoginOAuth
import Testing

@Suite struct RefreshPolicyTests {
    let now = Date(timeIntervalSince1970: 2_000_000)

    func family(clientId: String = "cli", jkt: String? = "key-a", revokedAt: Date? = nil) -> TokenFamily {
        TokenFamily(id: "fam", clientId: clientId, accountId: "acc", scopes: ["openid", "offline_access"], refreshJKT: jkt, origin: .deviceCode, createdAt: now, expiresAt: now.addingTimeInterval(3600), revokedAt: revokedAt)
    }

    func refresh(usedAt: Date? = nil, revokedAt: Date? = nil, expiresAt: Date? = nil) -> OAuthToken {
        OAuthToken(id: "rt", kind: .refresh, hash: "h", familyId: "fam", scopes: ["openid", "offline_access"], jkt: nil, createdAt: now, expiresAt: expiresAt ?? now.addingTimeInterval(3600), usedAt: usedAt, revokedAt: revokedAt)
    }

    func mint(_ accessScopes: [String], _ refreshScopes: [String]) -> (tokens: [OAuthToken], expiresAt: Date) {
        ([
            OAuthToken(id: "new-at", kind: .access, hash: "h1", familyId: "fam", scopes: accessScopes, jkt: nil, createdAt: now, expiresAt: now.addingTimeInterval(60)),
            OAuthToken(id: "new-rt", kind: .refresh, hash: "h2", familyId: "fam", scopes: refreshScopes, jkt: nil, createdAt: now, expiresAt: now.addingTimeInterval(7200)),
        ], now.addingTimeInterval(7200))
    }

    func decide(_ token: OAuthToken, _ family: TokenFamily, client: String = "cli", jkt: String? = "key-a", scopes: [String] = []) throws(OAuthError) -> RefreshDecision {
        try RefreshPolicy.decide(token: token, family: family, clientId: client, proofJKT: jkt, requestedScopes: scopes, now: now, mint: mint)
    }

    @Test func rotatesAnUnusedTokenOfTheRightClientAndKey() throws {
        guard case .rotate(let tokens, let expiresAt) = try decide(refresh(), family()) else {
            Issue.record("expected a rotation"); return
        }
        #expect(tokens.map(\.scopes) == [["openid", "offline_access"], ["openid", "offline_access"]])
        // The new refresh token outlives the family: the family moves past it by 1/32 of its lifetime.
        #expect(expiresAt == now.addingTimeInterval(7200 + 7200 / 32))
    }

    @Test func aFamilyThatOutlivesTheNewTokensStaysWhereItIs() throws {
        var long = family()
        long.expiresAt = now.addingTimeInterval(7200)
        guard case .rotate(_, let expiresAt) = try decide(refresh(), long) else {
            Issue.record("expected a rotation"); return
        }
        #expect(expiresAt == nil, "no write to the family's row")
        #expect(RefreshPolicy.familyExpiry(now.addingTimeInterval(10), outlivedBy: now.addingTimeInterval(10), now: now) == nil)
        #expect(RefreshPolicy.familyExpiry(now, outlivedBy: now.addingTimeInterval(3200), now: now) == now.addingTimeInterval(3300))
    }

    @Test func aReplayedTokenRevokesTheFamilyWhatEverKeyItComesWith() throws {
        #expect(try decide(refresh(usedAt: now), family()) == .revokeFamily)
        #expect(try decide(refresh(usedAt: now), family(), jkt: "thief") == .revokeFamily)
    }

    @Test func anotherClientsTokenIsInvalidAndChangesNothing() {
        #expect(throws: OAuthError.self) { try decide(refresh(usedAt: now), family(), client: "other") }
    }

    @Test func aKeyBoundFamilyNeedsAProofOfItsKey() throws {
        #expect(throws: OAuthError.invalidGrant("the refresh token is bound to another DPoP key")) { try decide(refresh(), family(), jkt: "key-b") }
        #expect(throws: OAuthError.self) { try decide(refresh(), family(), jkt: nil) }
        _ = try decide(refresh(), family(jkt: nil), jkt: nil)
    }

    @Test func revokedAndExpiredTokensAreInvalid() {
        #expect(throws: OAuthError.self) { try decide(refresh(revokedAt: now), family()) }
        #expect(throws: OAuthError.self) { try decide(refresh(), family(revokedAt: now)) }
        #expect(throws: OAuthError.self) { try decide(refresh(expiresAt: now), family()) }
    }

    @Test func scopesMayNarrowButNotWiden() throws {
        guard case .rotate(let tokens, _) = try decide(refresh(), family(), scopes: ["openid"]) else {
            Issue.record("expected a rotation"); return
        }
        #expect(tokens.map(\.scopes) == [["openid"], ["openid", "offline_access"]], "the new refresh token keeps the old scopes")
        do {
            _ = try decide(refresh(), family(), scopes: ["openid", "phone"])
            Issue.record("a wider scope was granted")
        } catch {
            #expect(error.code == .invalidScope)
        }
    }
}

@Suite struct SigningKeyTests {
    @Test func aRetiredKeyIsPublishedForOneTokenLifetime() {
        let t0 = Date(timeIntervalSince1970: 1_000)
        var key = SigningKey(kid: "k", algorithm: .es256, privateKeyPEM: "pem", createdAt: t0)
        #expect(key.isPublished(at: t0.addingTimeInterval(1_000_000), tokenLifetime: 600))
        key.retiredAt = t0.addingTimeInterval(100)
        #expect(key.isPublished(at: t0.addingTimeInterval(699), tokenLifetime: 600))
        #expect(!key.isPublished(at: t0.addingTimeInterval(700), tokenLifetime: 600))
    }

    @Test func atHashIsTheLeftHalfOfTheSHA256() {
        // Expected value computed independently with Python's hashlib and base64 modules.
        #expect(IDTokenClaims.atHash(for: "jHkWEdUXMU1BwAsC4vtUsZwnNSoWuqVGQFeMdO8Yv4WxgQ") == "rQ7bb78t_oh7DI5_Bu5S6w")
    }
}

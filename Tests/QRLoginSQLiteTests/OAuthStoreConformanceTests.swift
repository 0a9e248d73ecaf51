import Foundation
import QRLoginCore
import QRLoginOAuth
import Testing

/// The OAuth records (clients, device grants, token families and tokens) in every ``Store``.
@Suite("Store conformance: OAuth")
struct OAuthStoreConformanceTests {
    private let t0 = Fixtures.t0

    static func client(_ id: String = "cli", type: ClientType = .public) -> OAuthClient {
        OAuthClient(
            id: id, name: "Terminal <app>", type: type, secretHash: type == .confidential ? ClientSecret.hash("qrl_cs_\(id)") : nil,
            redirectURIs: ["https://app.example/cb?x=1 2", "http://127.0.0.1:9000/cb"], grantTypes: [.deviceCode, .refreshToken],
            scopes: ["billing:read"], requireDPoP: true, createdAt: Fixtures.t0
        )
    }

    static func deviceRequest(_ id: String = "req-d", code: String = "BCDFGHJK", expiresAt: Date = Fixtures.t0.addingTimeInterval(600)) -> LoginRequest {
        var request = Fixtures.loginRequest(id, expiresAt: expiresAt)
        request.pollSecretHash = Secrets.hash("qrl_dc_\(id)")
        request.deviceGrant = DeviceGrant(clientId: "cli", scopes: ["openid", "offline_access"], userCode: code, interval: 5)
        return request
    }

    static func grant(family id: String = "fam", account: String = "acc-1", client: String = "cli", jkt: String? = "key-a") -> IssuedGrant {
        let t0 = Fixtures.t0
        let family = TokenFamily(id: id, clientId: client, accountId: account, scopes: ["openid", "offline_access"], refreshJKT: jkt, origin: .deviceCode, createdAt: t0, expiresAt: t0.addingTimeInterval(86_400))
        return IssuedGrant(family: family, tokens: [
            OAuthToken(id: "\(id)-at", kind: .access, hash: "hash-\(id)-at", familyId: id, scopes: ["openid"], jkt: jkt, createdAt: t0, expiresAt: t0.addingTimeInterval(3600)),
            OAuthToken(id: "\(id)-rt", kind: .refresh, hash: "hash-\(id)-rt", familyId: id, scopes: ["openid", "offline_access"], jkt: nil, createdAt: t0, expiresAt: t0.addingTimeInterval(86_400)),
        ])
    }

    /// An account, a confirmed device request, and its redemption writing `grant()`.
    static func issue(_ store: any Store, family: String = "fam") async throws {
        if try await store.account(id: "acc-1") == nil { try await store.createAccount(Fixtures.account()) }
        var request = deviceRequest("req-\(family)", code: UserCode.generate())
        try await store.insertLoginRequest(request)
        let issued = grant(family: family)
        request = try await store.transitionLoginRequest(id: request.id) { stored in
            try stored.scan(accountId: "acc-1", displayName: "Alice", deviceId: "dev-1", ticketHash: Fixtures.ticket, ticketExpiresAt: Fixtures.t0.addingTimeInterval(60), match: 0, matchChoices: [], userCodeChoices: [stored.deviceGrant!.userCode], at: Fixtures.t0)
            try stored.confirm(deviceId: "dev-1", accountId: "acc-1", ticketHash: Fixtures.ticket, pick: .userCode(stored.deviceGrant!.userCode), pickupWindow: 120, at: Fixtures.t0)
            #expect(stored.pollDeviceGrant(at: Fixtures.t0) == .issue)
            return LoginSideEffects(issueGrant: issued)
        }
        #expect(request.deviceGrant?.issued == true)
    }

    @Test(arguments: StoreKind.allCases)
    func clientsRoundTripAndReplace(kind: StoreKind) async throws {
        try await kind.withStore { store in
            let client = Self.client()
            try await store.upsertClient(client)
            try await store.upsertClient(Self.client("aaa", type: .confidential))
            #expect(try await store.client(id: "cli") == client)
            #expect(try await store.client(id: "nope") == nil)
            #expect(try await store.clients().map(\.id) == ["aaa", "cli"])
            var renamed = client
            renamed.name = "Renamed"
            renamed.secretHash = nil
            renamed.grantTypes = [.deviceCode]
            renamed.requireDPoP = false
            renamed.idTokenAlgorithm = .rs256
            renamed.postLogoutRedirectURIs = ["https://app.example/bye"]
            try await store.upsertClient(renamed)
            #expect(try await store.client(id: "cli") == renamed)
            #expect(try await store.clients().count == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func removingAClientRevokesItsFamilies(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.upsertClient(Self.client())
            try await Self.issue(store)
            #expect(try await store.removeClient(id: "cli", at: t0.addingTimeInterval(5)))
            #expect(try await store.removeClient(id: "cli", at: t0.addingTimeInterval(6)) == false)
            #expect(try await store.client(id: "cli") == nil)
            let lookup = try #require(try await store.oauthToken(hash: "hash-fam-at", family: "fam"))
            #expect(lookup.family.revokedAt == t0.addingTimeInterval(5))
            #expect(!lookup.token.isActive(in: lookup.family, at: t0.addingTimeInterval(6)))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func deviceGrantRequestsRoundTripAndAreFoundByCodeAndSecret(kind: StoreKind) async throws {
        try await kind.withStore { store in
            var request = Self.deviceRequest()
            request.deviceGrant?.lastPolledAt = t0.addingTimeInterval(3)
            try await store.insertLoginRequest(request)
            try await store.insertLoginRequest(Fixtures.loginRequest("req-qr"))
            #expect(try await store.loginRequest(id: "req-d") == request)
            #expect(try await store.loginRequest(id: "req-qr")?.deviceGrant == nil)
            #expect(try await store.loginRequest(pollSecretHash: Secrets.hash("qrl_dc_req-d")) == request)
            #expect(try await store.loginRequest(pollSecretHash: Secrets.hash("qrl_dc_other")) == nil)
            #expect(try await store.loginRequest(pollSecretHash: Fixtures.loginRequest("req-qr").pollSecretHash) == nil, "a QR login is not found by its poll secret")
            #expect(try await store.loginRequest(userCode: "BCDFGHJK", at: t0)?.id == "req-d")
            #expect(try await store.loginRequest(userCode: "BCDFGHJL", at: t0) == nil)
            #expect(try await store.loginRequest(userCode: "BCDFGHJK", at: t0.addingTimeInterval(600)) == nil, "an expired request's code is free")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aPollIsWrittenEvenWhenItSaysSlowDown(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.insertLoginRequest(Self.deviceRequest())
            for (offset, slow) in [(0.0, false), (1.0, true)] {
                let now = t0.addingTimeInterval(offset)
                _ = try await store.transitionLoginRequest(id: "req-d") { stored in
                    #expect(stored.pollDeviceGrant(at: now).isSlowDown == slow)
                    return .none
                }
            }
            let stored = try #require(try await store.loginRequest(id: "req-d"))
            #expect(stored.deviceGrant?.interval == 10)
            #expect(stored.deviceGrant?.lastPolledAt == t0.addingTimeInterval(1))
            #expect(stored.version == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRedemptionWritesTheFamilyAndTokensWithTheRequest(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let access = try #require(try await store.oauthToken(hash: "hash-fam-at", family: "fam"))
            #expect(access.token == Self.grant().tokens[0])
            #expect(access.family == Self.grant().family)
            #expect(access.username == "alice")
            #expect(try await store.oauthToken(hash: "hash-fam-rt", family: "fam")?.token.kind == .refresh)
            #expect(try await store.oauthToken(hash: "nope", family: "fam") == nil)
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: t0).map(\.id) == ["fam"])
            #expect(try await store.tokenFamilies(accountId: "acc-2", at: t0).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aFailedTransitionWritesNoGrant(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.insertLoginRequest(Self.deviceRequest())
            await #expect(throws: QRLoginError.expired) {
                _ = try await store.transitionLoginRequest(id: "req-d") { _ in throw QRLoginError.expired }
            }
            #expect(try await store.oauthToken(hash: "hash-fam-at", family: "fam") == nil)
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: t0).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func refreshRotatesOnceAndAReplayRevokesTheFamily(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let later = t0.addingTimeInterval(10)
            let newRefresh = OAuthToken(id: "rt2", kind: .refresh, hash: "hash-rt2", familyId: "fam", scopes: ["openid"], jkt: nil, createdAt: later, expiresAt: later.addingTimeInterval(200_000))
            let first = try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: later) { token, family in
                #expect(token.usedAt == nil)
                #expect(family.id == "fam")
                return .rotate(tokens: [newRefresh], familyExpiresAt: newRefresh.expiresAt)
            }
            #expect(first == .rotate(tokens: [newRefresh], familyExpiresAt: newRefresh.expiresAt))
            #expect(try await store.oauthToken(hash: "hash-fam-rt", family: "fam")?.token.usedAt == later)
            #expect(try await store.oauthToken(hash: "hash-rt2", family: "fam")?.family.expiresAt == newRefresh.expiresAt)

            let replay = try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: later.addingTimeInterval(1)) { token, _ in
                #expect(token.usedAt == later)
                return .revokeFamily
            }
            #expect(replay == .revokeFamily)
            let family = try #require(try await store.oauthToken(hash: "hash-rt2", family: "fam")).family
            #expect(family.revokedAt == later.addingTimeInterval(1))
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: later).isEmpty)
            #expect(try await store.useRefreshToken(hash: "hash-fam-at", family: "fam", at: later) { _, _ in .revokeFamily } == nil, "an access token is no refresh token")
            #expect(try await store.useRefreshToken(hash: "nope", family: "fam", at: later) { _, _ in .revokeFamily } == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRefusedRefreshWritesNothing(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            await #expect(throws: OAuthError.self) {
                _ = try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: t0) { _, _ in throw OAuthError.invalidGrant("no") }
            }
            let lookup = try #require(try await store.oauthToken(hash: "hash-fam-rt", family: "fam"))
            #expect(lookup.token.usedAt == nil)
            #expect(lookup.family.revokedAt == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRefreshRecordsItsProofAndARecordedProofWritesNothing(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let later = t0.addingTimeInterval(10)
            let proof = ProofRecord(key: "thumb:jti-1", expiresAt: later.addingTimeInterval(60), now: later)
            let new = OAuthToken(id: "rt2", kind: .refresh, hash: "hash-rt2", familyId: "fam", scopes: ["openid"], jkt: nil, createdAt: later, expiresAt: later.addingTimeInterval(90_000))
            let rotated = try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: later, recording: proof) { _, _ in
                .rotate(tokens: [new], familyExpiresAt: nil)
            }
            #expect(rotated != nil)
            // The same proof again: refused before the refresh is read, and nothing is written.
            await #expect(throws: QRLoginError.replayedProof) {
                _ = try await store.useRefreshToken(hash: "hash-rt2", family: "fam", at: later, recording: proof) { _, _ in
                    Issue.record("a replayed proof must not reach the decision")
                    return .revokeFamily
                }
            }
            #expect(try #require(try await store.oauthToken(hash: "hash-rt2", family: "fam")).token.usedAt == nil)
            #expect(try #require(try await store.oauthToken(hash: "hash-rt2", family: "fam")).family.revokedAt == nil)

            // A refused refresh and an unknown token keep their proofs recorded.
            let refused = ProofRecord(key: "thumb:jti-2", expiresAt: later.addingTimeInterval(60), now: later)
            await #expect(throws: OAuthError.invalidGrant("no")) {
                _ = try await store.useRefreshToken(hash: "hash-rt2", family: "fam", at: later, recording: refused) { _, _ in throw OAuthError.invalidGrant("no") }
            }
            let unknown = ProofRecord(key: "thumb:jti-3", expiresAt: later.addingTimeInterval(60), now: later)
            #expect(try await store.useRefreshToken(hash: "nope", family: "fam", at: later, recording: unknown) { _, _ in .revokeFamily } == nil)
            for record in [refused, unknown] {
                await #expect(throws: QRLoginError.replayedProof) {
                    _ = try await store.useRefreshToken(hash: "hash-rt2", family: "fam", at: later, recording: record) { _, _ in .revokeFamily }
                }
            }
            #expect(try #require(try await store.oauthToken(hash: "hash-rt2", family: "fam")).token.usedAt == nil)

            // Past its expiry, a recorded proof's key is taken over (the acceptance window is over).
            let afterwards = later.addingTimeInterval(61)
            let again = ProofRecord(key: "thumb:jti-1", expiresAt: afterwards.addingTimeInterval(60), now: afterwards)
            #expect(try await store.useRefreshToken(hash: "hash-rt2", family: "fam", at: afterwards, recording: again) { _, _ in
                .rotate(tokens: [], familyExpiresAt: nil)
            } != nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func oneProofSentToManyRefreshesAtOnceIsUsedOnce(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let proof = ProofRecord(key: "thumb:raced", expiresAt: Fixtures.t0.addingTimeInterval(60), now: Fixtures.t0)
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        do {
                            let new = OAuthToken(id: "r\(index)", kind: .refresh, hash: "raced-\(index)", familyId: "fam", scopes: [], jkt: nil, createdAt: Fixtures.t0, expiresAt: Fixtures.t0.addingTimeInterval(99))
                            let decision = try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: Fixtures.t0, recording: proof) { token, _ in
                                token.usedAt == nil ? .rotate(tokens: [new], familyExpiresAt: nil) : .revokeFamily
                            }
                            if case .rotate? = decision { return "rotated" }
                            return "\(String(describing: decision))"
                        } catch QRLoginError.replayedProof {
                            return "replayed"
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // One refresh uses the proof; the rest are refused before they read the token.
            #expect(outcomes.filter { $0 == "rotated" }.count == 1, "\(outcomes)")
            #expect(outcomes.filter { $0 == "replayed" }.count == 9, "\(outcomes)")
            #expect(try #require(try await store.oauthToken(hash: "hash-fam-rt", family: "fam")).family.revokedAt == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentRefreshesHaveOneWinner(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let results = try await withThrowingTaskGroup(of: RefreshDecision?.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: Fixtures.t0.addingTimeInterval(1)) { token, _ in
                            guard token.usedAt == nil else { return .revokeFamily }
                            let new = OAuthToken(id: "n\(index)", kind: .refresh, hash: "h\(index)", familyId: "fam", scopes: [], jkt: nil, createdAt: Fixtures.t0, expiresAt: Fixtures.t0.addingTimeInterval(99))
                            return .rotate(tokens: [new], familyExpiresAt: Fixtures.t0.addingTimeInterval(86_400))
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { if case .rotate = $0 { true } else { false } }.count == 1)
            #expect(results.filter { $0 == .revokeFamily }.count == 19)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func revocationByClient(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let at = t0.addingTimeInterval(7)
            #expect(try await store.revokeOAuthToken(hash: "nope", family: "fam", clientId: "cli", at: at) == .unknown)
            #expect(try await store.revokeOAuthToken(hash: "hash-fam-at", family: "fam", clientId: "other", at: at) == .otherClient)
            #expect(try #require(try await store.oauthToken(hash: "hash-fam-at", family: "fam")).token.revokedAt == nil)
            #expect(try await store.revokeOAuthToken(hash: "hash-fam-at", family: "fam", clientId: "cli", at: at) == .accessToken)
            let access = try #require(try await store.oauthToken(hash: "hash-fam-at", family: "fam"))
            #expect(access.token.revokedAt == at)
            #expect(access.family.revokedAt == nil, "revoking an access token leaves the family")
            #expect(try await store.revokeOAuthToken(hash: "hash-fam-rt", family: "fam", clientId: "cli", at: at) == .family)
            #expect(try await store.oauthToken(hash: "hash-fam-rt", family: "fam")?.family.revokedAt == at)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func familiesAreRevokedByTheirAccountOnly(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            #expect(try await store.revokeTokenFamily(id: "fam", accountId: "acc-2", at: t0) == false)
            #expect(try await store.revokeTokenFamily(id: "fam", accountId: "acc-1", at: t0) == true)
            #expect(try await store.revokeTokenFamily(id: "fam", accountId: "acc-1", at: t0) == false)
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: t0).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aTokenLookupNamesItsOwnAccountsUser(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            try await store.createAccount(Fixtures.account("acc-2", username: "bob", phone: nil))
            var request = Self.deviceRequest("req-bob", code: UserCode.generate())
            try await store.insertLoginRequest(request)
            let grant = Self.grant(family: "fam-bob", account: "acc-2")
            request = try await store.transitionLoginRequest(id: request.id) { stored in
                try stored.scan(accountId: "acc-2", displayName: "Bob", deviceId: "dev-2", ticketHash: Fixtures.ticket, ticketExpiresAt: Fixtures.t0.addingTimeInterval(60), match: 0, matchChoices: [], userCodeChoices: [stored.deviceGrant!.userCode], at: Fixtures.t0)
                try stored.confirm(deviceId: "dev-2", accountId: "acc-2", ticketHash: Fixtures.ticket, pick: .userCode(stored.deviceGrant!.userCode), pickupWindow: 120, at: Fixtures.t0)
                return LoginSideEffects(issueGrant: grant)
            }
            // Twice each: a store may answer the second from memory.
            for _ in 0..<2 {
                #expect(try await store.oauthToken(hash: "hash-fam-at", family: "fam")?.username == "alice")
                #expect(try await store.oauthToken(hash: "hash-fam-bob-at", family: "fam-bob")?.username == "bob")
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aRotationThatKeepsTheFamilysExpiryWritesNoFamily(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            let later = t0.addingTimeInterval(10)
            let access = OAuthToken(id: "at2", kind: .access, hash: "hash-at2", familyId: "fam", scopes: ["openid"], jkt: "key-a", createdAt: later, expiresAt: later.addingTimeInterval(3600))
            let refresh = OAuthToken(id: "rt2", kind: .refresh, hash: "hash-rt2", familyId: "fam", scopes: ["openid", "offline_access"], jkt: nil, createdAt: later, expiresAt: later.addingTimeInterval(80_000))
            let decision = try await store.useRefreshToken(hash: "hash-fam-rt", family: "fam", at: later) { _, _ in
                .rotate(tokens: [access, refresh], familyExpiresAt: nil)
            }
            #expect(decision == .rotate(tokens: [access, refresh], familyExpiresAt: nil))
            let lookup = try #require(try await store.oauthToken(hash: "hash-rt2", family: "fam"))
            #expect(lookup.family.expiresAt == t0.addingTimeInterval(86_400), "the family's expiry stays where it was")
            #expect(try await store.oauthToken(hash: "hash-at2", family: "fam")?.token == access)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func grantsListFamiliesWithAWorkingTokenUntilItsExpiry(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            try await Self.issue(store, family: "fam2")
            // The family's own expiry (a day) is only a bound; the listing gives its tokens'.
            let listed = try await store.tokenFamilies(accountId: "acc-1", at: t0)
            #expect(listed.map(\.id) == ["fam", "fam2"])
            #expect(listed.map(\.expiresAt) == [t0.addingTimeInterval(86_400), t0.addingTimeInterval(86_400)])

            // A family whose refresh token was used and whose access token was revoked holds
            // nothing that works, though it is neither revoked nor expired.
            let later = t0.addingTimeInterval(10)
            let access = OAuthToken(id: "at2", kind: .access, hash: "hash-at2", familyId: "fam2", scopes: ["openid"], jkt: "key-a", createdAt: later, expiresAt: later.addingTimeInterval(600))
            _ = try await store.useRefreshToken(hash: "hash-fam2-rt", family: "fam2", at: later) { _, _ in .rotate(tokens: [access], familyExpiresAt: nil) }
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: later).map(\.expiresAt) == [t0.addingTimeInterval(86_400), t0.addingTimeInterval(3600)],
                    "fam2's refresh token is used: its first access token is the one that works longest")
            #expect(try await store.revokeOAuthToken(hash: "hash-at2", family: "fam2", clientId: "cli", at: later) == .accessToken)
            #expect(try await store.revokeOAuthToken(hash: "hash-fam2-at", family: "fam2", clientId: "cli", at: later) == .accessToken)
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: later).map(\.id) == ["fam"])
            #expect(try #require(try await store.oauthToken(hash: "hash-fam2-rt", family: "fam2")).family.revokedAt == nil)

            // Past its last token's expiry, a family is no longer listed, whatever its own says.
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: t0.addingTimeInterval(86_400)).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func expiredTokensAndFamiliesAreDeleted(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await Self.issue(store)
            // The access token expires after an hour, the refresh token and the family after a day.
            #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(3601)) == 1)
            #expect(try await store.oauthToken(hash: "hash-fam-at", family: "fam") == nil)
            #expect(try await store.oauthToken(hash: "hash-fam-rt", family: "fam") != nil)
            #expect(try await store.deleteOAuthTokens(expiredBefore: t0.addingTimeInterval(86_401)) == 2)
            #expect(try await store.oauthToken(hash: "hash-fam-rt", family: "fam") == nil)
            #expect(try await store.tokenFamilies(accountId: "acc-1", at: t0).isEmpty)
        }
    }
}

/// The keys that sign ID tokens, in every ``Store``.
@Suite("Store conformance: signing keys")
struct SigningKeyStoreConformanceTests {
    private let t0 = Fixtures.t0

    func key(_ kid: String, _ algorithm: SigningAlgorithm, at offset: TimeInterval) -> SigningKey {
        SigningKey(kid: kid, algorithm: algorithm, privateKeyPEM: "-----BEGIN PRIVATE KEY-----\n\(kid)\n-----END PRIVATE KEY-----\n", createdAt: Fixtures.t0.addingTimeInterval(offset))
    }

    @Test(arguments: StoreKind.allCases)
    func aNewKeyRetiresTheActiveKeyOfItsAlgorithmOnly(kind: StoreKind) async throws {
        try await kind.withStore { store in
            #expect(try await store.signingKeys().isEmpty)
            try await store.addSigningKey(key("es-1", .es256, at: 0))
            try await store.addSigningKey(key("rs-1", .rs256, at: 1))
            try await store.addSigningKey(key("es-2", .es256, at: 2))
            let keys = try await store.signingKeys()
            #expect(keys.map(\.kid) == ["es-1", "rs-1", "es-2"])
            #expect(keys[0].retiredAt == t0.addingTimeInterval(2))
            #expect(keys[1].retiredAt == nil)
            #expect(keys[2].retiredAt == nil)
            #expect(keys[2] == key("es-2", .es256, at: 2), "the PEM and dates round-trip")
            #expect(SigningKeySelection.signer(of: .es256, in: keys)?.kid == "es-2")
            #expect(SigningKeySelection.signer(of: .rs256, in: keys)?.kid == "rs-1")
        }
    }

    @Test(arguments: StoreKind.allCases)
    func retiredKeysAreDeletedOnlyPastTheCutoff(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.addSigningKey(key("es-1", .es256, at: 0))
            try await store.addSigningKey(key("es-2", .es256, at: 10))
            #expect(try await store.deleteSigningKeys(retiredBefore: t0.addingTimeInterval(10)) == 0)
            #expect(try await store.deleteSigningKeys(retiredBefore: t0.addingTimeInterval(11)) == 1)
            #expect(try await store.signingKeys().map(\.kid) == ["es-2"], "the active key is never deleted")
        }
    }
}

extension DevicePoll {
    var isSlowDown: Bool {
        if case .slowDown = self { return true }
        return false
    }
}

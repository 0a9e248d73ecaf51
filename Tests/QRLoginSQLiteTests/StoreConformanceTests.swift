import Foundation
import QRLoginCore
import Testing

/// One suite, every ``Store`` method, run against every implementation.
@Suite("Store conformance")
struct StoreConformanceTests {
    private let t0 = Fixtures.t0

    // MARK: Accounts

    @Test(arguments: StoreKind.allCases)
    func createAndLookUpAccount(kind: StoreKind) async throws {
        try await kind.withStore { store in
            let account = Fixtures.account()
            try await store.createAccount(account)
            #expect(try await store.account(id: "acc-1") == account)
            #expect(try await store.account(username: "alice") == account)
            #expect(try await store.account(username: "ALICE") == account)
            #expect(try await store.account(username: "aLiCe") == account)
            #expect(try await store.account(phone: "+15550001") == account)
            #expect(try await store.account(id: "nobody") == nil)
            #expect(try await store.account(username: "bob") == nil)
            #expect(try await store.account(phone: "+15559999") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func accountWithoutPhone(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account("acc-1", username: "alice", phone: nil))
            try await store.createAccount(Fixtures.account("acc-2", username: "bob", phone: nil))
            #expect(try await store.account(id: "acc-2")?.phone == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func duplicateUsernameIsRefusedCaseInsensitively(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            for name in ["alice", "ALICE", "Alice"] {
                await #expect(throws: QRLoginError.usernameTaken) {
                    try await store.createAccount(Fixtures.account("acc-2", username: name, phone: "+15550002"))
                }
            }
            #expect(try await store.account(id: "acc-2") == nil)
            #expect(try await store.account(phone: "+15550002") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func nonASCIIUsernamesCompareCaseInsensitively(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account(username: "Ärger"))
            #expect(try await store.account(username: "äRGER")?.id == "acc-1")
            await #expect(throws: QRLoginError.usernameTaken) {
                try await store.createAccount(Fixtures.account("acc-2", username: "äRGER", phone: nil))
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func duplicatePhoneIsRefused(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            await #expect(throws: QRLoginError.phoneTaken) {
                try await store.createAccount(Fixtures.account("acc-2", username: "bob", phone: "+15550001"))
            }
            #expect(try await store.account(id: "acc-2") == nil)
            #expect(try await store.account(username: "bob") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func duplicateUsernameAndPhoneReportsTheUsername(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            await #expect(throws: QRLoginError.usernameTaken) {
                try await store.createAccount(Fixtures.account("acc-2", username: "Alice", phone: "+15550001"))
            }
        }
    }

    // MARK: Devices

    @Test(arguments: StoreKind.allCases)
    func upsertListAndTouchDevices(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.createAccount(Fixtures.account("acc-2", username: "bob", phone: nil))
            let phone = Fixtures.device("dev-1", createdAt: t0)
            var laptop = Fixtures.device("dev-2", type: .pc, name: "Laptop", createdAt: t0.addingTimeInterval(5))
            laptop.approvedBy = "dev-1"
            try await store.upsertDevice(laptop)
            try await store.upsertDevice(phone)
            try await store.upsertDevice(Fixtures.device("dev-9", account: "acc-2"))
            #expect(try await store.devices(accountId: "acc-1") == [phone, laptop])
            #expect(try await store.device(id: "dev-1", accountId: "acc-1") == phone)
            #expect(try await store.device(id: "dev-9", accountId: "acc-1") == nil)

            var renamed = Fixtures.device("dev-1", type: .android, name: "New name", createdAt: t0.addingTimeInterval(100))
            renamed.lastSeenAt = t0.addingTimeInterval(100)
            renamed.lastIP = "203.0.113.9"
            try await store.upsertDevice(renamed)
            let stored = try #require(try await store.device(id: "dev-1", accountId: "acc-1"))
            #expect(stored.type == .android)
            #expect(stored.name == "New name")
            #expect(stored.lastSeenAt == t0.addingTimeInterval(100))
            #expect(stored.lastIP == "203.0.113.9")
            #expect(stored.createdAt == t0, "an upsert keeps the first link time")
            #expect(stored.approvedBy == nil)

            try await store.touchDevice(id: "dev-2", accountId: "acc-1", at: t0.addingTimeInterval(7.25), ip: "198.51.100.1")
            let touched = try #require(try await store.device(id: "dev-2", accountId: "acc-1"))
            #expect(touched.lastSeenAt == t0.addingTimeInterval(7.25))
            #expect(touched.lastIP == "198.51.100.1")
            #expect(touched.name == "Laptop")
            #expect(touched.approvedBy == "dev-1")
            try await store.touchDevice(id: "unknown", accountId: "acc-1", at: t0, ip: "x")
            #expect(try await store.devices(accountId: "acc-1").count == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func removeDeviceRevokesOnlyItsTokens(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.upsertDevice(Fixtures.device("dev-1"))
            try await store.upsertDevice(Fixtures.device("dev-2"))
            try await store.insertToken(Fixtures.token("tok-a", device: "dev-1"))
            try await store.insertToken(Fixtures.token("tok-b", device: "dev-1"))
            try await store.insertToken(Fixtures.token("tok-c", device: "dev-2"))
            let removedAt = t0.addingTimeInterval(50)

            #expect(try await store.removeDevice(id: "dev-1", accountId: "acc-1", at: removedAt))
            #expect(try await store.device(id: "dev-1", accountId: "acc-1") == nil)
            #expect(try await store.devices(accountId: "acc-1").map(\.id) == ["dev-2"])
            #expect(try await store.token(hash: Secrets.hash("qrl_at_tok-a"))?.revokedAt == removedAt)
            #expect(try await store.token(hash: Secrets.hash("qrl_at_tok-b"))?.revokedAt == removedAt)
            #expect(try await store.token(hash: Secrets.hash("qrl_at_tok-c"))?.revokedAt == nil)
            #expect(try await store.removeDevice(id: "dev-1", accountId: "acc-1", at: removedAt) == false)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func removeDeviceKeepsEarlierRevocationTimes(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.upsertDevice(Fixtures.device())
            try await store.insertToken(Fixtures.token("tok-a"))
            _ = try await store.revokeToken(id: "tok-a", at: t0.addingTimeInterval(1))
            _ = try await store.removeDevice(id: "dev-1", accountId: "acc-1", at: t0.addingTimeInterval(9))
            #expect(try await store.token(hash: Secrets.hash("qrl_at_tok-a"))?.revokedAt == t0.addingTimeInterval(1))
        }
    }

    // MARK: Tokens

    @Test(arguments: StoreKind.allCases)
    func insertLookUpAndRevokeTokens(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            let token = Fixtures.token("tok-1", origin: .qr, approvedBy: "dev-0")
            try await store.insertToken(token)
            #expect(try await store.token(hash: token.hash) == token)
            #expect(try await store.token(hash: Secrets.hash("qrl_at_unknown")) == nil)

            let revokedAt = t0.addingTimeInterval(3.5)
            #expect(try await store.revokeToken(id: "tok-1", at: revokedAt))
            #expect(try await store.revokeToken(id: "tok-1", at: revokedAt.addingTimeInterval(1)) == false)
            #expect(try await store.revokeToken(id: "unknown", at: revokedAt) == false)
            var expected = token
            expected.revokedAt = revokedAt
            #expect(try await store.token(hash: token.hash) == expected)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func endedTokensAreDeletedPastTheCutoffOnly(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            var expired = Fixtures.token("expired")
            expired.expiresAt = t0.addingTimeInterval(100)
            var expiresLater = Fixtures.token("expires-later")
            expiresLater.expiresAt = t0.addingTimeInterval(300)
            for token in [expired, expiresLater, Fixtures.token("revoked-early"), Fixtures.token("revoked-late"), Fixtures.token("live")] {
                try await store.insertToken(token)
            }
            #expect(try await store.revokeToken(id: "revoked-early", at: t0.addingTimeInterval(50)))
            #expect(try await store.revokeToken(id: "revoked-late", at: t0.addingTimeInterval(250)))

            #expect(try await store.deleteTokens(endedBefore: t0.addingTimeInterval(200)) == 2)
            #expect(try await store.token(hash: expired.hash) == nil)
            #expect(try await store.token(hash: Fixtures.token("revoked-early").hash) == nil)
            #expect(try await store.token(hash: expiresLater.hash) != nil)
            #expect(try await store.token(hash: Fixtures.token("revoked-late").hash) != nil, "revoked after the cutoff")
            #expect(try await store.token(hash: Fixtures.token("live").hash) != nil, "neither expired nor revoked")
            #expect(try await store.deleteTokens(endedBefore: t0.addingTimeInterval(200)) == 0)
            #expect(try await store.deleteTokens(endedBefore: t0.addingTimeInterval(400)) == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func identityReadsTokenAccountAndDeviceTogether(kind: StoreKind) async throws {
        try await kind.withStore { store in
            let account = Fixtures.account()
            try await store.createAccount(account)
            let device = Fixtures.device("dev-1")
            try await store.upsertDevice(device)
            let token = Fixtures.token("tok-1", device: "dev-1")
            try await store.insertToken(token)
            // A token whose device was never linked.
            try await store.insertToken(Fixtures.token("tok-orphan", device: "dev-unknown"))

            #expect(try await store.identity(tokenHash: token.hash) == StoredIdentity(token: token, account: account, device: device))
            #expect(try await store.identity(tokenHash: Secrets.hash("qrl_at_unknown")) == nil)
            #expect(try await store.identity(tokenHash: Secrets.hash("qrl_at_tok-orphan")) == nil)

            // Revoked or not, as token(hash:): the caller decides.
            let revokedAt = t0.addingTimeInterval(2)
            _ = try await store.revokeToken(id: "tok-1", at: revokedAt)
            #expect(try await store.identity(tokenHash: token.hash)?.token.revokedAt == revokedAt)

            // A removed device takes the identity with it.
            _ = try await store.removeDevice(id: "dev-1", accountId: "acc-1", at: t0.addingTimeInterval(3))
            #expect(try await store.identity(tokenHash: token.hash) == nil)
        }
    }

    // MARK: One-time codes

    @Test(arguments: StoreKind.allCases)
    func codeIsAcceptedOnce(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.putOneTimeCode(OneTimeCode(phone: "+15550001", codeHash: "h-123456", expiresAt: t0.addingTimeInterval(300)))
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-123456", maxAttempts: 5, at: t0) == .accepted)
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-123456", maxAttempts: 5, at: t0) == .missing)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func wrongCodesCountDownToLockout(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.putOneTimeCode(OneTimeCode(phone: "+15550001", codeHash: "h-right", expiresAt: t0.addingTimeInterval(300)))
            for remaining in [4, 3, 2, 1] {
                #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-wrong", maxAttempts: 5, at: t0) == .rejected(remaining: remaining))
            }
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-wrong", maxAttempts: 5, at: t0) == .tooManyAttempts)
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-right", maxAttempts: 5, at: t0) == .missing)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func rightCodeAfterWrongOnesIsAccepted(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.putOneTimeCode(OneTimeCode(phone: "+15550001", codeHash: "h-right", expiresAt: t0.addingTimeInterval(300)))
            _ = try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-wrong", maxAttempts: 5, at: t0)
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-right", maxAttempts: 5, at: t0) == .accepted)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func expiredOrUnknownCodeIsMissing(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.putOneTimeCode(OneTimeCode(phone: "+15550001", codeHash: "h-right", expiresAt: t0.addingTimeInterval(300)))
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-right", maxAttempts: 5, at: t0.addingTimeInterval(300)) == .missing)
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-right", maxAttempts: 5, at: t0) == .missing, "an expired code is gone")
            #expect(try await store.checkOneTimeCode(phone: "+15550002", codeHash: "h-right", maxAttempts: 5, at: t0) == .missing)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func newCodeReplacesTheOldOne(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.putOneTimeCode(OneTimeCode(phone: "+15550001", codeHash: "h-old", expiresAt: t0.addingTimeInterval(300)))
            for _ in 0..<3 { _ = try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-wrong", maxAttempts: 5, at: t0) }
            try await store.putOneTimeCode(OneTimeCode(phone: "+15550001", codeHash: "h-new", expiresAt: t0.addingTimeInterval(600)))
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-old", maxAttempts: 5, at: t0) == .rejected(remaining: 4), "the new code starts with all attempts")
            #expect(try await store.checkOneTimeCode(phone: "+15550001", codeHash: "h-new", maxAttempts: 5, at: t0.addingTimeInterval(400)) == .accepted)
        }
    }

    // MARK: Login requests

    @Test(arguments: StoreKind.allCases)
    func insertAndGetLoginRequest(kind: StoreKind) async throws {
        try await kind.withStore { store in
            let request = Fixtures.loginRequest()
            try await store.insertLoginRequest(request)
            #expect(try await store.loginRequest(id: "req-1") == request)
            #expect(try await store.loginRequest(id: "req-2") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func transitionRoundTripsEveryField(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            try await store.insertLoginRequest(Fixtures.loginRequest())
            let scanned = try await store.transitionLoginRequest(id: "req-1") { request in
                try Fixtures.scan(&request)
                return .none
            }
            #expect(scanned.state == .scanned)
            #expect(scanned.version == 1)
            #expect(try await store.loginRequest(id: "req-1") == scanned)

            let denied = try await store.transitionLoginRequest(id: "req-1") { request in
                try request.confirm(deviceId: "dev-1", accountId: "acc-1", ticketHash: Fixtures.ticket, match: 12, pickupWindow: 120, at: Fixtures.t0.addingTimeInterval(2))
                return .none
            }
            #expect(denied.denyReason == .wrongMatch)
            #expect(try await store.loginRequest(id: "req-1") == denied)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func transitionWritesItsSideEffects(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            var request = Fixtures.loginRequest()
            try Fixtures.scan(&request)
            try await store.insertLoginRequest(request)
            let pc = Fixtures.device("pc-key", type: .pc, name: "Office <PC>")
            let first = Fixtures.token("tok-pc-1", device: "pc-key", origin: .qr, approvedBy: "dev-1")
            let second = Fixtures.token("tok-pc-2", device: "pc-key", origin: .qr, approvedBy: "dev-1")
            let revokedAt = t0.addingTimeInterval(4)

            _ = try await store.transitionLoginRequest(id: "req-1") { request in
                try Fixtures.confirm(&request)
                _ = try request.collect(tokenId: first.id, at: Fixtures.t0.addingTimeInterval(3))
                return LoginSideEffects(upsertDevice: pc, insertToken: first)
            }
            #expect(try await store.device(id: "pc-key", accountId: "acc-1") == pc)
            #expect(try await store.token(hash: first.hash) == first)

            let collected = try await store.transitionLoginRequest(id: "req-1") { request in
                let previous = try request.collect(tokenId: second.id, at: revokedAt)
                return LoginSideEffects(insertToken: second, revokeTokenId: previous, revokedAt: revokedAt)
            }
            #expect(collected.tokenId == "tok-pc-2")
            #expect(try await store.loginRequest(id: "req-1") == collected)
            #expect(try await store.token(hash: first.hash)?.revokedAt == revokedAt)
            #expect(try await store.token(hash: second.hash)?.isActive(at: revokedAt) == true)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func throwingTransitionWritesNothing(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            let original = Fixtures.loginRequest()
            try await store.insertLoginRequest(original)
            // The closure changes the request before it throws; none of that may stick.
            await #expect(throws: QRLoginError.wrongState(.cancelled)) {
                try await store.transitionLoginRequest(id: "req-1") { request in
                    request.state = .cancelled
                    request.version += 1
                    try request.confirm(deviceId: "dev-1", accountId: "acc-1", ticketHash: Fixtures.ticket, match: 47, pickupWindow: 120, at: Fixtures.t0)
                    return LoginSideEffects(upsertDevice: Fixtures.device("pc-key"), insertToken: Fixtures.token("tok-x"))
                }
            }
            #expect(try await store.loginRequest(id: "req-1") == original)
            #expect(try await store.devices(accountId: "acc-1").isEmpty)
            #expect(try await store.token(hash: Fixtures.token("tok-x").hash) == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func transitionOfUnknownRequest(kind: StoreKind) async throws {
        try await kind.withStore { store in
            await #expect(throws: QRLoginError.notFound) {
                try await store.transitionLoginRequest(id: "nope") { _ in .none }
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func deleteExpiredLoginRequests(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.insertLoginRequest(Fixtures.loginRequest("old-1", expiresAt: t0.addingTimeInterval(10)))
            try await store.insertLoginRequest(Fixtures.loginRequest("old-2", expiresAt: t0.addingTimeInterval(20)))
            try await store.insertLoginRequest(Fixtures.loginRequest("edge", expiresAt: t0.addingTimeInterval(30)))
            try await store.insertLoginRequest(Fixtures.loginRequest("live", expiresAt: t0.addingTimeInterval(40)))
            #expect(try await store.deleteLoginRequests(expiredBefore: t0.addingTimeInterval(30)) == 2)
            #expect(try await store.loginRequest(id: "old-1") == nil)
            #expect(try await store.loginRequest(id: "old-2") == nil)
            #expect(try await store.loginRequest(id: "edge") != nil, "the cutoff is exclusive")
            #expect(try await store.loginRequest(id: "live") != nil)
            #expect(try await store.deleteLoginRequests(expiredBefore: t0) == 0)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func expireStoresExpiredOnRequestsPastTheirDeadlineOnce(kind: StoreKind) async throws {
        try await kind.withStore { store in
            // Pending past its expiry; scanned past its ticket (60 s) but not its own expiry
            // (120 s), which keeps its state until then; pending and scanned still live; a
            // confirmed one past its expiry stays confirmed.
            try await store.insertLoginRequest(Fixtures.loginRequest("due", expiresAt: t0.addingTimeInterval(30)))
            try await store.insertLoginRequest(Fixtures.loginRequest("ticket-due"))
            _ = try await store.transitionLoginRequest(id: "ticket-due") { try Fixtures.scan(&$0); return .none }
            try await store.insertLoginRequest(Fixtures.loginRequest("live", expiresAt: t0.addingTimeInterval(300)))
            try await store.insertLoginRequest(Fixtures.loginRequest("scanned-live", expiresAt: t0.addingTimeInterval(300)))
            _ = try await store.transitionLoginRequest(id: "scanned-live") { request in
                try request.scan(
                    accountId: "acc-1", displayName: "Alice", deviceId: "dev-1", ticketHash: Fixtures.ticket,
                    ticketExpiresAt: t0.addingTimeInterval(200), match: 47, matchChoices: [12, 47, 83], at: t0.addingTimeInterval(1)
                )
                return .none
            }
            try await store.insertLoginRequest(Fixtures.loginRequest("confirmed", expiresAt: t0.addingTimeInterval(30)))
            _ = try await store.transitionLoginRequest(id: "confirmed") { request in
                try Fixtures.scan(&request)
                try request.confirm(deviceId: "dev-1", accountId: "acc-1", ticketHash: Fixtures.ticket, match: 47, pickupWindow: 60, at: t0.addingTimeInterval(2))
                return .none
            }
            let versions = try await ["due", "ticket-due"].asyncMap { try #require(try await store.loginRequest(id: $0)).version }

            let now = t0.addingTimeInterval(90)
            #expect(try await store.expireLoginRequests(at: now) == 1)
            let due = try #require(try await store.loginRequest(id: "due"))
            #expect(due.state == .expired)
            #expect(due.version == versions[0] + 1)
            let ticketDue = try #require(try await store.loginRequest(id: "ticket-due"))
            #expect(ticketDue.state == .scanned, "only its ticket ran out")
            #expect(ticketDue.effectiveState(at: now) == .expired, "as clients see it")
            #expect(try await store.loginRequest(id: "live")?.state == .pending)
            #expect(try await store.loginRequest(id: "scanned-live")?.state == .scanned)
            #expect(try await store.loginRequest(id: "confirmed")?.state == .confirmed)
            // Counted once: a second pass finds nothing new; a later one, what expired since.
            #expect(try await store.expireLoginRequests(at: now) == 0)
            #expect(try await store.expireLoginRequests(at: t0.addingTimeInterval(150)) == 1, "ticket-due expired at 120 s")
            let expired = try #require(try await store.loginRequest(id: "ticket-due"))
            #expect(expired.state == .expired)
            #expect(expired.ticketHash == nil)
            #expect(expired.version == versions[1] + 1)
            #expect(try await store.expireLoginRequests(at: t0.addingTimeInterval(350)) == 2, "live and scanned-live at 300 s")
        }
    }
}

private extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

import Foundation
import QRLoginCore
import Testing

/// Outcomes of many concurrent attempts at the same transition.
private struct Outcomes {
    var successes = 0
    var errors: [QRLoginError] = []
    var otherErrors: [String] = []
}

private func race(_ count: Int, _ attempt: @escaping @Sendable (Int) async throws -> Void) async -> Outcomes {
    await withTaskGroup(of: Result<Void, any Error>.self) { group in
        for index in 0..<count {
            group.addTask {
                do {
                    try await attempt(index)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        var outcomes = Outcomes()
        for await result in group {
            switch result {
            case .success: outcomes.successes += 1
            case .failure(let error as QRLoginError): outcomes.errors.append(error)
            case .failure(let error): outcomes.otherErrors.append("\(error)")
            }
        }
        return outcomes
    }
}

/// Every transition has exactly one winner, whatever the store.
@Suite("Store concurrency")
struct StoreConcurrencyTests {
    @Test(arguments: StoreKind.allCases)
    func fiftyConcurrentScansHaveOneWinner(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.insertLoginRequest(Fixtures.loginRequest())
            let outcomes = await race(50) { index in
                _ = try await store.transitionLoginRequest(id: "req-1") { request in
                    try Fixtures.scan(&request, device: "phone-\(index)")
                    return .none
                }
            }
            #expect(outcomes.successes == 1)
            #expect(outcomes.errors == Array(repeating: .alreadyScanned, count: 49))
            #expect(outcomes.otherErrors.isEmpty)
            let stored = try #require(try await store.loginRequest(id: "req-1"))
            #expect(stored.state == .scanned)
            #expect(stored.version == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func fiftyConcurrentConfirmsCreateOneToken(kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await store.createAccount(Fixtures.account())
            var request = Fixtures.loginRequest()
            try Fixtures.scan(&request)
            try await store.insertLoginRequest(request)

            let outcomes = await race(50) { index in
                _ = try await store.transitionLoginRequest(id: "req-1") { request in
                    try Fixtures.confirm(&request)
                    _ = try request.collect(tokenId: "tok-\(index)", at: Fixtures.t0.addingTimeInterval(3))
                    return LoginSideEffects(
                        upsertDevice: Fixtures.device("pc-key", type: .pc, name: "PC \(index)"),
                        insertToken: Fixtures.token("tok-\(index)", device: "pc-key", origin: .qr, approvedBy: "dev-1")
                    )
                }
            }
            #expect(outcomes.successes == 1)
            #expect(outcomes.errors == Array(repeating: .wrongState(.confirmed), count: 49))
            #expect(outcomes.otherErrors.isEmpty)

            let devices = try await store.devices(accountId: "acc-1")
            #expect(devices.count == 1)
            var tokens: [String] = []
            for index in 0..<50 where try await store.token(hash: Fixtures.token("tok-\(index)").hash) != nil {
                tokens.append("tok-\(index)")
            }
            #expect(tokens.count == 1)
            let stored = try #require(try await store.loginRequest(id: "req-1"))
            #expect(stored.state == .confirmed)
            #expect(stored.tokenId == tokens.first)
            #expect(devices.first?.name == "PC \(tokens.first?.dropFirst(4) ?? "")")
        }
    }
}

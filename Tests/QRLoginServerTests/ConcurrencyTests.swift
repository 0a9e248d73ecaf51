import Foundation
import HTTPTypes
import QRLoginCore
import QRLoginServer
import Testing

@Suite("Concurrent transitions have exactly one winner")
struct ConcurrencyTests {
    @Test("50 concurrent scans of one request: one 200, 49 conflicts", arguments: Backend.allCases)
    func concurrentScans(backend: Backend) async throws {
        try await backend.withStore { store in try await withAPI(store: store) { api, _ in
            var phones: [TestDevice] = []
            for index in 0..<5 { phones.append(try await api.signedInPhone("user\(index)")) }
            let login = try await api.newLogin()
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<50 {
                    let phone = phones[index % phones.count]
                    group.addTask { try await api.scan(login, by: phone).status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.filter { $0 == .conflict }.count == 49)
        } }
    }

    @Test("50 concurrent confirms with one ticket: one 200, one PC device, one working token", arguments: Backend.allCases)
    func concurrentConfirms(backend: Backend) async throws {
        try await backend.withStore { store in try await withAPI(store: store) { api, _ in
            let phone = try await api.signedInPhone("alice")
            let login = try await api.newLogin()
            let scanned = try await api.scan(login, by: phone)
            let ticket = try #require(scanned["ticket"] as? String)
            let match = try #require(try await api.pcStatus(login)["match"] as? Int)
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        try await api.call(.post, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": ticket, "match": match], device: phone, token: phone.token).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.filter { $0 == .conflict }.count == 49)
            let accountId = try #require(try await store.loginRequest(id: login.id)?.accountId)
            #expect(try await store.devices(accountId: accountId).count == 2)
        } }
    }

    @Test("Concurrent pickups by the PC: at most one collected token works", arguments: Backend.allCases)
    func concurrentPickups(backend: Backend) async throws {
        try await backend.withStore { store in try await withAPI(store: store) { api, _ in
            let phone = try await api.signedInPhone("bob")
            let login = try await api.newLogin()
            let scanned = try await api.scan(login, by: phone)
            _ = try await api.confirm(login, by: phone, scan: scanned)
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await api.pcStatus(login) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Each read either collects a token or was overtaken by a newer read (409).
            let tokens = replies.compactMap { ($0["token"] as? [String: Any])?["accessToken"] as? String }
            #expect(!tokens.isEmpty)
            #expect(replies.allSatisfy { $0.status == .ok || ($0.status == .conflict && $0.code == "superseded") })
            #expect(replies.filter { $0.status == .ok }.count == tokens.count)
            var working = 0
            for token in tokens where try await api.call(.get, "/api/v1/me", device: login.device, token: token).status == .ok {
                working += 1
            }
            #expect(working == 1)
        } }
    }
}

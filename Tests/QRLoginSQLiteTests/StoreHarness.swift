import Foundation
import Logging
import QRLoginCore
@testable import QRLoginPostgres
import QRLoginSQLite
import QRLoginTestSupport
import Testing

/// The store implementations every conformance test runs against. PostgreSQL joins them when
/// `QRLOGIN_TEST_POSTGRES` names a database (scripts/test.sh starts one and sets it).
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, sqliteInMemory, sqliteFile, postgres

    static var allCases: [StoreKind] {
        TestPostgres.url == nil ? [.memory, .sqliteInMemory, .sqliteFile] : [.memory, .sqliteInMemory, .sqliteFile, .postgres]
    }

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty store of this kind, then closes and deletes it.
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        switch self {
        case .memory:
            try await body(MemoryStore())
        case .sqliteInMemory:
            try await TestStores.withSQLite { try await body($0) }
        case .sqliteFile:
            let path = TemporaryDatabase.path()
            defer { TemporaryDatabase.remove(path) }
            try await TestStores.withSQLite(path: path) { try await body($0) }
        case .postgres:
            try await TestPostgres.withStore { try await body($0) }
        }
    }
}


/// A database file in the temporary directory, with its WAL companions.
typealias TemporaryDatabase = TestStores.TemporaryFile

/// Records with sensible defaults, so tests spell out only what they are about.
enum Fixtures {
    /// Sub-second on purpose: stores must keep fractions of a second.
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000.123_456)

    static func account(_ id: String = "acc-1", username: String = "alice", phone: String? = "+15550001") -> Account {
        Account(id: id, username: username, passwordHash: "$2b$12$hash", phone: phone, displayName: "Alice \(id)", createdAt: t0)
    }

    static func device(_ id: String = "dev-1", account: String = "acc-1", type: DeviceType = .ios, name: String = "Phone", createdAt: Date = t0) -> Device {
        Device(id: id, accountId: account, type: type, name: name, publicKeyJWK: #"{"kty":"EC"}"#, createdAt: createdAt, lastSeenAt: createdAt, lastIP: "192.0.2.1")
    }

    static func token(_ id: String = "tok-1", account: String = "acc-1", device: String = "dev-1", origin: TokenOrigin = .password, approvedBy: String? = nil) -> TokenRecord {
        TokenRecord(
            id: id, hash: Secrets.hash("qrl_at_\(id)"), accountId: account, deviceId: device, deviceType: .ios,
            origin: origin, approvedBy: approvedBy, createdAt: t0, expiresAt: t0.addingTimeInterval(30 * 86_400)
        )
    }

    static func loginRequest(_ id: String = "req-1", expiresAt: Date = t0.addingTimeInterval(120)) -> LoginRequest {
        LoginRequest(
            id: id, pollSecretHash: Secrets.hash("qrl_ps_\(id)"), pcKeyThumbprint: "pc-key", pcPublicKeyJWK: #"{"kty":"EC","x":"pc"}"#,
            requester: RequesterContext(type: .pc, name: "Office <PC>", ip: "198.51.100.7", userAgent: "Mozilla/5.0 \"quoted\""),
            createdAt: t0, expiresAt: expiresAt
        )
    }

    static let ticket = Secrets.hash("qrl_st_ticket")

    /// pending → scanned by `device` of acc-1.
    static func scan(_ request: inout LoginRequest, device: String = "dev-1") throws {
        try request.scan(
            accountId: "acc-1", displayName: "Alice", deviceId: device, ticketHash: ticket,
            ticketExpiresAt: t0.addingTimeInterval(60), match: 47, matchChoices: [12, 47, 83], at: t0.addingTimeInterval(1)
        )
    }

    static func confirm(_ request: inout LoginRequest) throws {
        try request.confirm(deviceId: "dev-1", accountId: "acc-1", ticketHash: ticket, match: 47, pickupWindow: 120, at: t0.addingTimeInterval(2))
    }
}

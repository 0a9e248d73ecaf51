import Foundation
import QRLoginCore

extension SQLiteStore {
    /// Creates the device or updates its type, name, key, last-seen, last IP and approver.
    public func upsertDevice(_ device: Device) async throws {
        try exclusively { connection in
            try Self.upsert(device, on: connection)
        }
    }

    /// Shared with login-request transitions, which upsert inside their own transaction.
    static func upsert(_ device: Device, on connection: SQLiteConnection) throws {
        try connection.execute(
            """
            INSERT INTO devices (account_id, id, type, name, public_key_jwk, created_at, last_seen_at, last_ip, approved_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (account_id, id) DO UPDATE SET
                type = excluded.type, name = excluded.name, public_key_jwk = excluded.public_key_jwk,
                last_seen_at = excluded.last_seen_at, last_ip = excluded.last_ip, approved_by = excluded.approved_by
            """,
            [.text(device.accountId), .text(device.id), .text(device.type.rawValue), .text(device.name),
             .text(device.publicKeyJWK), device.createdAt.sqlite, device.lastSeenAt.sqlite, .text(device.lastIP),
             device.approvedBy.sqlite]
        )
    }

    /// The device `id` of `accountId`, if linked.
    public func device(id: String, accountId: String) async throws -> Device? {
        try exclusively { connection in
            try Self.device(id: id, accountId: accountId, on: connection)
        }
    }

    static func device(id: String, accountId: String, on connection: SQLiteConnection) throws -> Device? {
        try connection.queryFirst("SELECT * FROM devices WHERE account_id = ? AND id = ?", [.text(accountId), .text(id)], device(from:))
    }

    /// All devices of `accountId`, oldest first.
    public func devices(accountId: String) async throws -> [Device] {
        try exclusively { connection in
            try connection.query("SELECT * FROM devices WHERE account_id = ? ORDER BY created_at, id", [.text(accountId)], Self.device(from:))
        }
    }

    /// Records a use of the device.
    public func touchDevice(id: String, accountId: String, at date: Date, ip: String) async throws {
        try exclusively { connection in
            try connection.execute(
                "UPDATE devices SET last_seen_at = ?, last_ip = ? WHERE account_id = ? AND id = ?",
                [date.sqlite, .text(ip), .text(accountId), .text(id)]
            )
        }
    }

    /// Unlinks a device and revokes all of its tokens for that account, in one transaction.
    /// Returns whether it existed.
    public func removeDevice(id: String, accountId: String, at date: Date) async throws -> Bool {
        try transaction { connection in
            try connection.execute(
                "UPDATE tokens SET revoked_at = ? WHERE account_id = ? AND device_id = ? AND revoked_at IS NULL",
                [date.sqlite, .text(accountId), .text(id)]
            )
            try connection.execute(
                "UPDATE browser_sessions SET revoked_at = ? WHERE account_id = ? AND device_id = ? AND revoked_at IS NULL",
                [date.sqlite, .text(accountId), .text(id)]
            )
            let removed = try connection.query(
                "DELETE FROM devices WHERE account_id = ? AND id = ? RETURNING id",
                [.text(accountId), .text(id)]
            ) { _ in true }
            return !removed.isEmpty
        }
    }

    private static func device(from row: SQLiteRow) throws -> Device {
        Device(
            id: try row.text("id"), accountId: try row.text("account_id"), type: try row.enumValue("type"),
            name: try row.text("name"), publicKeyJWK: try row.text("public_key_jwk"), createdAt: try row.date("created_at"),
            lastSeenAt: try row.date("last_seen_at"), lastIP: try row.text("last_ip"),
            approvedBy: try row.optionalText("approved_by")
        )
    }
}

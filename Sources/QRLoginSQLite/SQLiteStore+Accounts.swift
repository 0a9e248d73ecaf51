import Foundation
import QRLoginCore

extension SQLiteStore {
    /// Inserts a new account.
    /// - Throws: ``QRLoginError/usernameTaken`` (case-insensitive) or ``QRLoginError/phoneTaken``;
    ///   nothing is written then.
    public func createAccount(_ account: Account) async throws {
        let key = Self.usernameKey(account.username)
        try exclusively { connection in
            do {
                try connection.execute(
                    """
                    INSERT INTO accounts (id, username, username_key, password_hash, phone, display_name, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(account.id), .text(account.username), .text(key), .text(account.passwordHash),
                     account.phone.sqlite, .text(account.displayName), account.createdAt.sqlite]
                )
            } catch let error as SQLiteStoreError where error.isUniqueViolation {
                // SQLite names whichever index it checked first; when both clash, the username
                // is reported, as MemoryStore does. Still under the lock, so the answer is current.
                let sameName = try connection.queryFirst("SELECT 1 AS taken FROM accounts WHERE username_key = ?", [.text(key)]) { _ in true }
                if sameName != nil { throw QRLoginError.usernameTaken }
                if case .sqlite(_, let message) = error, message.contains("accounts.phone") { throw QRLoginError.phoneTaken }
                throw error
            }
        }
    }

    /// The account with `id`, if any.
    public func account(id: String) async throws -> Account? {
        try accountWhere("SELECT * FROM accounts WHERE id = ?", .text(id))
    }

    /// The account whose username equals `username` case-insensitively, if any.
    public func account(username: String) async throws -> Account? {
        try accountWhere("SELECT * FROM accounts WHERE username_key = ?", .text(Self.usernameKey(username)))
    }

    /// The account with `phone`, if any.
    public func account(phone: String) async throws -> Account? {
        try accountWhere("SELECT * FROM accounts WHERE phone = ?", .text(phone))
    }

    /// Usernames compare as MemoryStore compares them: Swift's Unicode lowercasing.
    static func usernameKey(_ username: String) -> String {
        username.lowercased()
    }

    /// `sql` is always a literal of this file; the value is bound.
    private func accountWhere(_ sql: StaticString, _ value: SQLiteValue) throws -> Account? {
        try exclusively { connection in
            try Self.account(sql, value, on: connection)
        }
    }

    static func account(id: String, on connection: SQLiteConnection) throws -> Account? {
        try account("SELECT * FROM accounts WHERE id = ?", .text(id), on: connection)
    }

    private static func account(_ sql: StaticString, _ value: SQLiteValue, on connection: SQLiteConnection) throws -> Account? {
        try connection.queryFirst("\(sql)", [value]) { row in
            Account(
                id: try row.text("id"), username: try row.text("username"), passwordHash: try row.text("password_hash"),
                phone: try row.optionalText("phone"), displayName: try row.text("display_name"), createdAt: try row.date("created_at")
            )
        }
    }
}

import QRLoginCore
import VaporCSQLite

/// Storage faults of ``SQLiteStore`` (domain conflicts are ``QRLoginError``s instead).
public enum SQLiteStoreError: Error, Sendable, Equatable {
    /// The store was used after ``SQLiteStore/close()``.
    case closed
    /// The database was migrated by a newer build (its schema `version` is unknown here).
    case schemaTooNew(version: Int)
    /// A stored row could not be read back (a column is missing or has the wrong type).
    case malformedRow(column: String)
    /// A login request changed between its read and its write, which the write lock rules out;
    /// seeing this means another writer bypassed it.
    case concurrentModification(requestId: String)
    /// SQLite refused a call: its (extended) result `code` and its message.
    case sqlite(code: Int, message: String)
}

extension SQLiteStoreError: StoreUnavailableError {
    /// Whether the database cannot serve now, as opposed to a bug or bad data: the server
    /// answers 503 with a retry. That is a store closed for shutdown, and SQLite's busy (another
    /// process held the write lock past the busy timeout), I/O error, disk or quota full, out of
    /// memory, read-only (the file's permissions changed, or it was moved or deleted under the
    /// server), cannot open and locking-protocol results, in any of their extended forms.
    /// `SQLITE_LOCKED` is not among them: on the store's one private connection it means a
    /// conflict within that connection, a bug.
    public var isUnavailable: Bool {
        switch self {
        case .closed: true
        case .sqlite(let code, _): Self.unavailableCodes.contains(code & 0xFF)
        case .schemaTooNew, .malformedRow, .concurrentModification: false
        }
    }

    private static let unavailableCodes: Set<Int> = Set(
        [SQLITE_BUSY, SQLITE_IOERR, SQLITE_FULL, SQLITE_NOMEM, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PROTOCOL].map(Int.init)
    )
}

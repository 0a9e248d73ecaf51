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

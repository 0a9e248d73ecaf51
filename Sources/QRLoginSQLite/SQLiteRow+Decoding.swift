import Foundation
import SQLiteNIO

/// Dates are stored as REAL seconds since 2001-01-01 UTC, the very `Double` a `Date` holds, so
/// they round-trip bit for bit and records read back compare equal to what was written.
extension Date {
    var sqlite: SQLiteData { .float(timeIntervalSinceReferenceDate) }
}

extension Optional where Wrapped == Date {
    var sqlite: SQLiteData { map(\.sqlite) ?? .null }
}

extension Optional where Wrapped == String {
    var sqlite: SQLiteData { map(SQLiteData.text) ?? .null }
}

extension SQLiteRow {
    func text(_ name: String) throws -> String {
        guard case .text(let value)? = column(name) else { throw SQLiteStoreError.malformedRow(column: name) }
        return value
    }

    func optionalText(_ name: String) throws -> String? {
        switch column(name) {
        case .text(let value)?: value
        case .null?: nil
        default: throw SQLiteStoreError.malformedRow(column: name)
        }
    }

    func int(_ name: String) throws -> Int {
        guard case .integer(let value)? = column(name) else { throw SQLiteStoreError.malformedRow(column: name) }
        return Int(value)
    }

    func optionalInt(_ name: String) throws -> Int? {
        switch column(name) {
        case .integer(let value)?: Int(value)
        case .null?: nil
        default: throw SQLiteStoreError.malformedRow(column: name)
        }
    }

    func date(_ name: String) throws -> Date {
        guard case .float(let value)? = column(name) else { throw SQLiteStoreError.malformedRow(column: name) }
        return Date(timeIntervalSinceReferenceDate: value)
    }

    func optionalDate(_ name: String) throws -> Date? {
        switch column(name) {
        case .float(let value)?: Date(timeIntervalSinceReferenceDate: value)
        case .null?: nil
        default: throw SQLiteStoreError.malformedRow(column: name)
        }
    }

    func enumValue<E: RawRepresentable<String>>(_ name: String, as type: E.Type = E.self) throws -> E {
        guard let value = E(rawValue: try text(name)) else { throw SQLiteStoreError.malformedRow(column: name) }
        return value
    }
}

extension SQLiteConnection {
    /// Runs one statement and collects its rows. Calls the connection's own `query`, which reads
    /// rows on the thread pool, rather than the protocol extension that hops to the event loop
    /// once per row.
    func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        // Rows are appended on one pool thread and read only after the query has finished.
        nonisolated(unsafe) var rows: [SQLiteRow] = []
        try await query(sql, binds) { rows.append($0) }
        return rows
    }

    /// Runs one statement that returns no rows (or whose rows do not matter).
    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        try await query(sql, binds) { _ in }
    }
}

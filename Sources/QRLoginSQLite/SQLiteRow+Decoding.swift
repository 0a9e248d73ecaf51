import Foundation

/// Dates are stored as REAL seconds since 2001-01-01 UTC, the very `Double` a `Date` holds, so
/// they round-trip bit for bit and records read back compare equal to what was written.
extension Date {
    var sqlite: SQLiteValue { .real(timeIntervalSinceReferenceDate) }
}

extension Optional where Wrapped == Date {
    var sqlite: SQLiteValue { map(\.sqlite) ?? .null }
}

extension Optional where Wrapped == String {
    var sqlite: SQLiteValue { map(SQLiteValue.text) ?? .null }
}

extension Int {
    var sqlite: SQLiteValue { .integer(Int64(self)) }
}

extension SQLiteRow {
    func text(_ name: String) throws -> String {
        guard let value = try optionalText(name) else { throw SQLiteStoreError.malformedRow(column: name) }
        return value
    }

    func int(_ name: String) throws -> Int {
        guard let value = try optionalInt(name) else { throw SQLiteStoreError.malformedRow(column: name) }
        return value
    }

    func date(_ name: String) throws -> Date {
        guard let value = try optionalDate(name) else { throw SQLiteStoreError.malformedRow(column: name) }
        return value
    }

    func optionalDate(_ name: String) throws -> Date? {
        try optionalDouble(name).map(Date.init(timeIntervalSinceReferenceDate:))
    }

    func enumValue<E: RawRepresentable<String>>(_ name: String, as type: E.Type = E.self) throws -> E {
        guard let value = E(rawValue: try text(name)) else { throw SQLiteStoreError.malformedRow(column: name) }
        return value
    }
}

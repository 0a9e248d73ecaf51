import PostgresNIO
import QRLoginCore

/// Failures of ``PostgresStore`` that are not the login service's own (``QRLoginError``).
public enum PostgresStoreError: Error, Sendable, CustomStringConvertible, StoreUnavailableError {
    /// The database did not answer within the deadline, or the connection failed.
    case unavailable(String)
    /// The first connection, at start, failed: the database is not there, or refused the user.
    case cannotConnect(to: String, reason: String)
    /// The database answered with an error (its SQLSTATE and message).
    case database(sqlState: String, message: String)
    /// A stored value could not be read back as its type.
    case malformedRow(column: String)
    /// The database was migrated by a newer build.
    case schemaTooNew(version: Int)
    /// The request changed between this store's read and write (should not happen under the row
    /// lock; reported rather than overwritten).
    case concurrentModification(requestId: String)

    init(_ error: PSQLError) {
        if error.code == .server {
            self = .database(
                sqlState: error.serverInfo?[.sqlState] ?? "?",
                message: error.serverInfo?[.message] ?? "\(error.code)"
            )
        } else {
            self = .unavailable("\(error.code)")
        }
    }

    /// What went wrong with a connection, for people: the server's message (a wrong password, an
    /// unknown database) or the connection's failure, without the query.
    static func reason(of error: PSQLError) -> String {
        if let message = error.serverInfo?[.message] { return message }
        if let underlying = error.underlying { return "\(underlying)" }
        return "\(error.code)"
    }

    /// Whether the failure says the database cannot serve now (so a caller answers 503).
    public var isUnavailable: Bool {
        switch self {
        case .unavailable, .cannotConnect: true
        // Class 08: connection exceptions; 57P01-57P03: admin shutdown, crash shutdown, cannot
        // connect now (a restarting server); 53: insufficient resources.
        case .database(let state, _): state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53")
        default: false
        }
    }

    public var description: String {
        switch self {
        case .unavailable(let reason): "PostgreSQL unavailable: \(reason)"
        case .cannotConnect(let place, let reason): "cannot connect to \(place): \(reason)"
        case .database(let state, let message): "PostgreSQL error \(state): \(message)"
        case .malformedRow(let column): "malformed value in column \(column)"
        case .schemaTooNew(let version): "the database schema is at version \(version), newer than this build knows (\(PostgresMigrations.steps.count)); upgrade qrlogin"
        case .concurrentModification(let id): "login request \(id) changed under its row lock"
        }
    }
}

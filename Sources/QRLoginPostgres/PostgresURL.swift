import Foundation
import PostgresNIO

/// A malformed `--database` URL; the message says what to change.
public struct PostgresURLError: Error, Sendable, CustomStringConvertible, Equatable {
    public let description: String
}

/// Where the database is and how to sign in to it, read from a URL of the form
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`
/// (`postgresql://` too). `?host=/run/postgresql` connects over the Unix socket in that folder.
///
/// A password is best not put on a command line, where other users can see it: leave it out of
/// the URL and set `PGPASSWORD`, or pass the whole URL in `QRLOGIN_DATABASE`. Characters that are
/// special in URLs (`@`, `:`, `/`, `%`) are percent-encoded in the user and password.
public struct PostgresURL: Sendable, CustomStringConvertible {
    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    public var host: String?
    public var socketPath: String?
    public var port: Int
    public var username: String
    var password: String?
    public var database: String?
    public var tls: TLSMode

    /// Whether `text` names a PostgreSQL database rather than a SQLite file.
    public static func isPostgres(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// Parses `text`; `PGPASSWORD` from `environment` stands in for a password the URL lacks.
    public init(_ text: String, environment: [String: String] = [:]) throws(PostgresURLError) {
        guard Self.isPostgres(text), let url = URLComponents(string: text) else {
            throw PostgresURLError(description: "not a PostgreSQL URL; expected postgres://USER@HOST[:PORT]/DATABASE")
        }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        for name in query.keys where !["sslmode", "host"].contains(name) {
            throw PostgresURLError(description: "unknown URL parameter \(name); known: sslmode, host")
        }
        guard let user = url.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw PostgresURLError(description: "the URL names no user; expected postgres://USER@HOST/DATABASE")
        }
        username = user
        password = url.percentEncodedPassword.flatMap { $0.removingPercentEncoding } ?? environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw PostgresURLError(description: "port \(port) is out of range") }
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        database = path.isEmpty ? nil : path
        if let socketDir = query["host"], !socketDir.isEmpty {
            guard socketDir.hasPrefix("/") else { throw PostgresURLError(description: "host= must be the absolute path of a socket folder") }
            socketPath = socketDir + "/.s.PGSQL.\(port)"
            host = nil
        } else {
            guard let name = url.host, !name.isEmpty else {
                throw PostgresURLError(description: "the URL names no host; expected postgres://USER@HOST/DATABASE")
            }
            host = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
        }
        guard let mode = TLSMode(rawValue: query["sslmode"] ?? "prefer") else {
            throw PostgresURLError(description: "sslmode must be disable, prefer or require")
        }
        tls = mode
    }

    /// postgres-nio's configuration for this URL.
    var clientConfiguration: PostgresClient.Configuration {
        if let socketPath {
            return PostgresClient.Configuration(unixSocketPath: socketPath, username: username, password: password, database: database)
        }
        let tlsConfig: PostgresClient.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: host ?? "localhost", port: port, username: username, password: password, database: database, tls: tlsConfig)
    }

    /// The same settings for a single connection (the notifier's).
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        if let socketPath {
            return PostgresConnection.Configuration(unixSocketPath: socketPath, username: username, password: password, database: database)
        }
        let tlsConfig: PostgresConnection.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(try .init(configuration: .makeClientConfiguration()))
        case .require: .require(try .init(configuration: .makeClientConfiguration()))
        }
        return PostgresConnection.Configuration(host: host ?? "localhost", port: port, username: username, password: password, database: database, tls: tlsConfig)
    }

    /// The URL without its password, for logs.
    public var description: String {
        let place = socketPath.map { "?host=\(($0 as NSString).deletingLastPathComponent)" } ?? ""
        let hostPart = host.map { $0.contains(":") ? "[\($0)]" : $0 } ?? ""
        return "postgres://\(username)@\(hostPart):\(port)/\(database ?? "")\(place)"
    }
}

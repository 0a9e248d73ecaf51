import Foundation

/// An RFC 9457 problem the server answered with.
public struct Problem: Codable, Sendable, Equatable {
    /// The HTTP status.
    public var status: Int
    /// The stable machine-readable code, e.g. `invalid_token` or `already_scanned`.
    public var code: String
    /// The short title, e.g. `Unauthorized`.
    public var title: String
    /// What went wrong, in words.
    public var detail: String

    /// Creates a problem.
    public init(status: Int, code: String, title: String = "", detail: String = "") {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
    }
}

/// Everything the SDK throws.
public enum QRLoginClientError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The server refused the request; the problem's `code` says why.
    case server(Problem)
    /// The server could not be reached (refused, reset, timed out).
    case unreachable(server: String, reason: String)
    /// The call needs an access token and the client has none.
    case notSignedIn
    /// A server address that is not an http(s) URL.
    case invalidServerURL(String)
    /// A QR url or login id that cannot be a login request.
    case invalidLoginURL(String)
    /// The server answered with something that is not the v1 API.
    case invalidResponse(String)

    /// The problem's code for ``server(_:)``, else nil.
    public var code: String? {
        if case .server(let problem) = self { return problem.code }
        return nil
    }

    /// A readable one-line message.
    public var description: String {
        switch self {
        case .server(let problem):
            let detail = problem.detail.isEmpty ? problem.title : problem.detail
            return "\(detail) (\(problem.code), HTTP \(problem.status))"
        case .unreachable(let server, let reason):
            return "cannot reach the server at \(server): \(reason)"
        case .notSignedIn:
            return "not signed in"
        case .invalidServerURL(let text):
            return "not a server URL: \(text) (use e.g. https://login.example.com)"
        case .invalidLoginURL(let text):
            return "not a login url or id: \(text)"
        case .invalidResponse(let why):
            return "unexpected answer from the server: \(why)"
        }
    }

    /// The same as ``description``.
    public var errorDescription: String? { description }
}

import Crypto
import Foundation
import QRLoginCore

/// A client of one QRLogin server, acting as one device (one P-256 key).
///
/// Every request carries a fresh RFC 9449 proof of the device key; calls that need a session
/// send the access token with it. Failures throw ``QRLoginClientError``: `.server` carries the
/// server's problem `code`.
public actor QRLoginClient {
    /// The server's base URL, without a trailing slash (proofs sign `server + path`).
    public nonisolated let server: String
    /// Signs the proofs of this device's key.
    public nonisolated let signer: DPoPSigner
    /// Where requests go.
    public nonisolated let transport: any ClientTransport
    /// Sent as `User-Agent`; the phone shows it to the user on a QR login.
    public nonisolated let userAgent: String
    /// The session token, once signed in (or logged in by QR).
    public internal(set) var accessToken: String?

    /// A client of `server` (e.g. `https://login.example.com`) with the device key `key`.
    /// - Throws: ``QRLoginClientError/invalidServerURL(_:)`` when `server` is not an http(s) URL.
    public init(
        server: String, key: P256.Signing.PrivateKey, accessToken: String? = nil,
        transport: any ClientTransport = AsyncHTTPClientTransport(), userAgent: String = "QRLoginClient"
    ) throws {
        var base = server.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil, url.query == nil else {
            throw QRLoginClientError.invalidServerURL(server)
        }
        self.server = base
        self.signer = DPoPSigner(privateKey: key)
        self.accessToken = accessToken
        self.transport = transport
        self.userAgent = userAgent
    }

    /// This device's id: the RFC 7638 thumbprint of its key.
    public nonisolated var deviceId: String { signer.thumbprint }

    /// Replaces the session token (nil forgets it).
    public func setAccessToken(_ token: String?) {
        accessToken = token
    }

    // MARK: - Sending

    /// How a request is authorised.
    enum Auth {
        /// A proof only.
        case proof
        /// The session token with a proof (`Authorization: DPoP`).
        case session
        /// A poll secret with a proof (`Authorization: Bearer`).
        case pollSecret(String)
        /// Nothing.
        case none
    }

    /// Builds a signed request for `path` (which may carry a query).
    nonisolated func makeRequest(_ method: String, _ path: String, auth: Auth, token: String?, body: (any Encodable & Sendable)? = nil, accept: String = "application/json", timeout: Duration = .seconds(30)) throws -> TransportRequest {
        let pathOnly = String(path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        var headers: [(name: String, value: String)] = [("Accept", accept), ("User-Agent", userAgent)]
        switch auth {
        case .none:
            break
        case .proof:
            headers.append(("DPoP", try signer.proof(method: method, url: server + pathOnly)))
        case .session:
            guard let token else { throw QRLoginClientError.notSignedIn }
            headers.append(("Authorization", "DPoP \(token)"))
            headers.append(("DPoP", try signer.proof(method: method, url: server + pathOnly, accessToken: token)))
        case .pollSecret(let secret):
            headers.append(("Authorization", "Bearer \(secret)"))
            headers.append(("DPoP", try signer.proof(method: method, url: server + pathOnly, accessToken: secret)))
        }
        var data: Data?
        if let body {
            data = try JSONEncoder.qrlogin.encode(body)
            headers.append(("Content-Type", "application/json"))
        }
        return TransportRequest(method: method, url: server + path, headers: headers, body: data, timeout: timeout)
    }

    /// Sends `request`; maps transport failures to `.unreachable`.
    nonisolated func send(_ request: TransportRequest) async throws -> TransportResponse {
        do {
            return try await transport.send(request)
        } catch let error as QRLoginClientError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw QRLoginClientError.unreachable(server: server, reason: Self.describe(error))
        }
    }

    /// Sends a request and decodes a 2xx JSON answer as `Response`, or throws the problem.
    nonisolated func call<Response: Decodable>(_ method: String, _ path: String, auth: Auth, token: String?, body: (any Encodable & Sendable)? = nil, timeout: Duration = .seconds(30), as type: Response.Type) async throws -> Response {
        let data = try await exchange(method, path, auth: auth, token: token, body: body, timeout: timeout)
        do {
            return try JSONDecoder.qrlogin.decode(Response.self, from: data)
        } catch {
            throw QRLoginClientError.invalidResponse("\(method) \(path): \(error)")
        }
    }

    /// Sends a request whose success has no body worth reading.
    nonisolated func callNoContent(_ method: String, _ path: String, auth: Auth, token: String?, body: (any Encodable & Sendable)? = nil) async throws {
        _ = try await exchange(method, path, auth: auth, token: token, body: body, timeout: .seconds(30))
    }

    /// Sends a request (with a new proof) and returns a 2xx answer's body, or throws the problem.
    /// Every proof is signed once, so `dpop_proof_replayed` means something between here and the
    /// server sent it twice (a load balancer that retried a GET on another instance after the
    /// first one went away): a GET or HEAD is then signed and sent once more.
    nonisolated func exchange(_ method: String, _ path: String, auth: Auth, token: String?, body: (any Encodable & Sendable)?, timeout: Duration) async throws -> Data {
        var retried = false
        while true {
            let response = try await send(try makeRequest(method, path, auth: auth, token: token, body: body, timeout: timeout))
            let data = try await Self.readBody(response)
            do {
                try Self.checkStatus(response.status, data)
                return data
            } catch let error as QRLoginClientError where error.code == "dpop_proof_replayed" && !retried && (method == "GET" || method == "HEAD") {
                retried = true
            }
        }
    }

    nonisolated static func readBody(_ response: TransportResponse) async throws -> Data {
        do {
            return try await response.body.collect()
        } catch let error as QRLoginClientError {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw QRLoginClientError.invalidResponse("the connection broke while reading the answer: \(describe(error))")
        }
    }

    /// Throws the server's problem for a non-2xx status.
    nonisolated static func checkStatus(_ status: Int, _ data: Data) throws {
        guard !(200..<300).contains(status) else { return }
        throw QRLoginClientError.server(problem(status: status, data))
    }

    nonisolated static func problem(status: Int, _ data: Data) -> Problem {
        let body = try? JSONDecoder().decode(ProblemBody.self, from: data)
        return Problem(
            status: body?.status ?? status, code: body?.code ?? "http_\(status)",
            title: body?.title ?? "HTTP \(status)", detail: body?.detail ?? String(decoding: data.prefix(200), as: UTF8.self)
        )
    }

    nonisolated static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        // AsyncHTTPClient and NIO errors print as e.g. `HTTPClientError.connectTimeout` or
        // `connect(descriptor:addr:size:): Connection refused (errno: 111)`.
        if text.contains("Connection refused") { return "connection refused" }
        return text
    }

    /// The session token, or `.notSignedIn`.
    func requireToken() throws -> String {
        guard let accessToken else { throw QRLoginClientError.notSignedIn }
        return accessToken
    }
}

/// Accepts a login request's QR url (`https://host/q/ID`) or a bare id, and returns the id.
/// - Throws: ``QRLoginClientError/invalidLoginURL(_:)`` for anything else.
public func loginRequestId(fromURLOrId text: String) throws -> String {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    let isIdCharacter: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    if !trimmed.isEmpty, trimmed.count <= 64, trimmed.allSatisfy(isIdCharacter) { return trimmed }
    guard let url = URL(string: trimmed), url.scheme != nil else { throw QRLoginClientError.invalidLoginURL(text) }
    let parts = url.path.split(separator: "/")
    guard parts.count >= 2, parts[parts.count - 2] == "q", let id = parts.last, !id.isEmpty, id.count <= 64, id.allSatisfy(isIdCharacter) else {
        throw QRLoginClientError.invalidLoginURL(text)
    }
    return String(id)
}

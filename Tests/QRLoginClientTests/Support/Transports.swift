import Foundation
import QRLoginClient
import Synchronization

/// Wraps a transport and breaks the first event stream after its first chunk: by throwing
/// (a reset connection) or by ending it (a proxy or server that closed it).
final class DroppingTransport: ClientTransport {
    enum Cut: Sendable, CaseIterable {
        case error, end
    }

    struct Reset: Error {}

    let base: any ClientTransport
    let cut: Cut
    private let streamsOpened = Mutex(0)

    init(base: any ClientTransport = AsyncHTTPClientTransport(), cut: Cut) {
        self.base = base
        self.cut = cut
    }

    /// How many event streams were opened.
    var streams: Int { streamsOpened.withLock { $0 } }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        var response = try await base.send(request)
        guard request.header("Accept") == "text/event-stream" else { return response }
        let number = streamsOpened.withLock { count in
            count += 1
            return count
        }
        guard number == 1 else { return response }
        let body = response.body
        let cut = self.cut
        response.body = ResponseBody {
            var iterator = body.makeAsyncIterator()
            var chunks = 0
            return {
                if chunks == 1 {
                    chunks += 1
                    if cut == .error { throw Reset() }
                    return nil
                }
                if chunks > 1 { return nil }
                chunks += 1
                return try await iterator.next()
            }
        }
        return response
    }
}

/// Records every request's method and path.
final class RecordingTransport: ClientTransport {
    let base: any ClientTransport
    private let log = Mutex<[String]>([])

    init(base: any ClientTransport = AsyncHTTPClientTransport()) {
        self.base = base
    }

    var requests: [String] { log.withLock { $0 } }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        log.withLock { $0.append("\(request.method) \(URL(string: request.url)?.path ?? request.url)") }
        return try await base.send(request)
    }
}

/// Stands for a server or proxy that does not stream: asked for an event stream, it answers
/// with the plain JSON status. Runs `afterFirstAnswer` once that answer is in, before the
/// client reads it (to change the state behind the client's back).
final class PlainJSONTransport: ClientTransport {
    let base: any ClientTransport
    private let counts = Mutex((streams: 0, longPolls: 0))
    private let hook = Mutex<(@Sendable () async throws -> Void)?>(nil)

    init(base: any ClientTransport = AsyncHTTPClientTransport()) {
        self.base = base
    }

    /// How many event streams were asked for.
    var streams: Int { counts.withLock { $0.streams } }
    /// How many long-polls (`?wait=`) were sent.
    var longPolls: Int { counts.withLock { $0.longPolls } }

    func afterFirstAnswer(_ body: @escaping @Sendable () async throws -> Void) {
        hook.withLock { $0 = body }
    }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        if request.url.contains("wait=") { counts.withLock { $0.longPolls += 1 } }
        guard request.header("Accept") == "text/event-stream" else { return try await base.send(request) }
        counts.withLock { $0.streams += 1 }
        var plain = request
        plain.headers.removeAll { $0.name.lowercased() == "accept" }
        plain.headers.append((name: "Accept", value: "application/json"))
        let response = try await base.send(plain)
        if let body = hook.withLock({ hook in defer { hook = nil }; return hook }) { try await body() }
        return response
    }
}

/// Adds fixed header fields to every request: a test's stand-in for a proxy that says where
/// the client is (`X-Forwarded-For`).
final class HeaderAddingTransport: ClientTransport {
    let base: any ClientTransport
    let headers: [(name: String, value: String)]

    init(_ headers: [(name: String, value: String)], base: any ClientTransport = AsyncHTTPClientTransport()) {
        self.headers = headers
        self.base = base
    }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        var request = request
        request.headers += headers
        return try await base.send(request)
    }
}

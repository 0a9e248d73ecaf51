import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The default transport, on AsyncHTTPClient.
///
/// Why not Foundation's `URLSession`: waiting for a login streams Server-Sent Events, which
/// needs the response body as it arrives. On Linux, FoundationNetworking's `URLSession` has no
/// streaming `bytes(for:)`, so it could only long-poll there. AsyncHTTPClient streams on every
/// platform, runs on the same SwiftNIO as the server, and is already in the package's graph.
/// An app that prefers `URLSession` on Apple platforms can conform its own ``ClientTransport``.
///
/// Event streams (requests that accept `text/event-stream`) go through ``streamClient``, which by
/// default opens a connection for each: the server serves a stream that opens its connection
/// from a small channel handler (about 6 KB while the PC waits) and one on a reused connection
/// from its router (about 30 KB).
public struct AsyncHTTPClientTransport: ClientTransport {
    /// The client requests go through.
    public let client: HTTPClient
    /// The client event streams go through.
    public let streamClient: HTTPClient

    /// A transport on `client`, by default the process-wide shared client. A client of your own
    /// with `timeout.read` set (longer than the server's 15 s SSE heartbeat) also notices a
    /// connection that died silently; you shut that client down yourself. With the shared
    /// client, event streams go through a process-wide client that uses each connection once;
    /// with a client of your own, through that client (its settings, proxies and TLS included),
    /// unless ``init(client:streamClient:)`` names another.
    public init(client: HTTPClient = .shared) {
        self.init(client: client, streamClient: client === HTTPClient.shared ? Self.sharedStreamClient : client)
    }

    /// A transport whose event streams go through `streamClient` and everything else through
    /// `client`. Give `streamClient` a configuration with `maximumUsesPerConnection = 1` for
    /// the server's small path; you shut both down yourself.
    public init(client: HTTPClient, streamClient: HTTPClient) {
        self.client = client
        self.streamClient = streamClient
    }

    /// The shared client's settings, but a new connection for every event stream.
    private static let sharedStreamClient: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.maximumUsesPerConnection = 1
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Whether `request` opens an event stream.
    static func isEventStream(_ request: TransportRequest) -> Bool {
        request.header("Accept")?.lowercased().hasPrefix("text/event-stream") == true
    }

    /// Sends `request` and returns once the response head has arrived.
    public func send(_ request: TransportRequest) async throws -> TransportResponse {
        let client = Self.isEventStream(request) ? streamClient : client
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        let nanoseconds = request.timeout.components.seconds * 1_000_000_000 + request.timeout.components.attoseconds / 1_000_000_000
        let response = try await client.execute(outgoing, timeout: .nanoseconds(nanoseconds))
        let body = response.body
        return TransportResponse(
            status: Int(response.status.code),
            headers: response.headers.map { (name: $0.name, value: $0.value) },
            body: ResponseBody {
                let box = IteratorBox(body.makeAsyncIterator())
                return { try await box.next() }
            }
        )
    }
}

/// Holds AsyncHTTPClient's body iterator so a closure can advance it.
private final class IteratorBox {
    var iterator: HTTPClientResponse.Body.AsyncIterator

    init(_ iterator: HTTPClientResponse.Body.AsyncIterator) {
        self.iterator = iterator
    }

    func next() async throws -> [UInt8]? {
        guard let buffer = try await iterator.next() else { return nil }
        return Array(buffer.readableBytesView)
    }
}

extension AsyncHTTPClientTransport {
    /// Runs `body` with a transport on a client of its own whose connections time out after
    /// `readTimeout` without a byte (so a silently dead event stream is noticed and
    /// reconnected; the server sends a heartbeat every 15 s) and that reports a refused
    /// connection at once, and shuts its clients down after.
    /// Event streams go through a second client with the same settings that uses each
    /// connection once (see ``AsyncHTTPClientTransport``).
    /// - Throws: what `body` throws.
    public static func withOwnClient<Result>(readTimeout: Duration = .seconds(45), _ body: (AsyncHTTPClientTransport) async throws -> Result) async throws -> Result {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(readTimeout.components.seconds))
        // Report a refused connection at once (the shared client retries until the deadline);
        // the SDK's own reconnect loop does the retrying.
        configuration.connectionPool.retryConnectionEstablishment = false
        var streamConfiguration = configuration
        streamConfiguration.maximumUsesPerConnection = 1
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let streamClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: streamConfiguration)
        do {
            let result = try await body(AsyncHTTPClientTransport(client: client, streamClient: streamClient))
            try await client.shutdown()
            try await streamClient.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            try? await streamClient.shutdown()
            throw error
        }
    }
}

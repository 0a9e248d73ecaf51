import AsyncHTTPClient
import Foundation
import QRLoginClient
import QRLoginCore
import Synchronization
import Testing

/// Wraps a transport and records the `Connection` header of every event stream's response.
private final class StreamHeaderRecorder: ClientTransport {
    let base: any ClientTransport
    private let seen = Mutex<[String?]>([])

    init(base: any ClientTransport) {
        self.base = base
    }

    /// One entry per event stream opened: its response's `Connection` header, if any.
    var connectionHeaders: [String?] { seen.withLock { $0 } }

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let response = try await base.send(request)
        if request.header("Accept") == "text/event-stream" {
            seen.withLock { $0.append(response.header("Connection")?.lowercased()) }
        }
        return response
    }
}

/// The server serves an event stream that opens its connection from a small channel handler
/// (which answers `Connection: close`) and one on a reused connection from its router. The SDK's
/// default transports open each stream on a connection of its own, after other requests have
/// left pooled connections behind.
@Suite("SDK event streams on connections of their own")
struct StreamConnectionTests {
    /// Creates a login (leaving a pooled connection), waits until the stream says `pending`,
    /// and returns the `Connection` headers of the streams opened.
    private func streamHeaders(_ server: InProcessServer, transport: any ClientTransport) async throws -> [String?] {
        let recorder = StreamHeaderRecorder(base: transport)
        let pc = try server.client(transport: recorder)
        _ = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "warm-up"))
        let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "build box"))
        for try await status in pc.waitForLogin(login, transport: .serverSentEvents) where status.state == .pending {
            break
        }
        return recorder.connectionHeaders
    }

    @Test("the default transport on the shared client")
    func sharedClient() async throws {
        try await InProcessServer.with { server in
            let headers = try await streamHeaders(server, transport: AsyncHTTPClientTransport())
            #expect(headers == ["close"])
        }
    }

    @Test("the CLI's transport on a client of its own")
    func ownClient() async throws {
        try await InProcessServer.with { server in
            let headers = try await AsyncHTTPClientTransport.withOwnClient { transport in
                try await streamHeaders(server, transport: transport)
            }
            #expect(headers == ["close"])
        }
    }

    /// The check above can fail: one client for both reuses the warm connection, and the
    /// router serves the stream.
    @Test("one client for requests and streams reuses a pooled connection")
    func oneClient() async throws {
        try await InProcessServer.with { server in
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            let headers: [String?]
            do {
                headers = try await streamHeaders(server, transport: AsyncHTTPClientTransport(client: client, streamClient: client))
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
            #expect(headers.count == 1)
            #expect(headers.first != "close")
        }
    }
}

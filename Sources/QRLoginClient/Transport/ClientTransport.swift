import Foundation

/// Sends one HTTP request and returns the response with its body still streaming.
///
/// The SDK talks to the server only through this protocol, so tests and apps can swap the
/// network for a stub or a wrapper (the way swift-openapi-runtime's `ClientTransport` works).
/// ``AsyncHTTPClientTransport`` is the default.
public protocol ClientTransport: Sendable {
    /// Sends `request`. Throws when no response head arrives (connection refused, reset,
    /// timeout); HTTP error statuses are responses, not errors.
    func send(_ request: TransportRequest) async throws -> TransportResponse
}

/// One HTTP request as the SDK builds it.
public struct TransportRequest: Sendable {
    /// `GET`, `POST`, `DELETE`, …
    public var method: String
    /// The absolute URL, query included.
    public var url: String
    /// Header fields in order; names are case-insensitive.
    public var headers: [(name: String, value: String)]
    /// The body, if any.
    public var body: Data?
    /// How long to wait for the response head (the body of a stream may take longer).
    public var timeout: Duration

    /// Creates a request.
    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: Data? = nil, timeout: Duration = .seconds(30)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// An HTTP response whose body arrives as a stream of byte chunks.
public struct TransportResponse: Sendable {
    /// The status code.
    public var status: Int
    /// Header fields; names are case-insensitive.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: ResponseBody

    /// Creates a response.
    public init(status: Int, headers: [(name: String, value: String)], body: ResponseBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// A response body: an `AsyncSequence` of byte chunks that can be iterated once.
public struct ResponseBody: AsyncSequence, Sendable {
    /// A chunk of bytes.
    public typealias Element = [UInt8]

    private let make: @Sendable () -> AsyncIterator

    /// A body whose chunks come from `makeNext()`'s closure; it returns nil at the end.
    public init(_ makeNext: @escaping @Sendable () -> (() async throws -> [UInt8]?)) {
        make = { AsyncIterator(nextChunk: makeNext()) }
    }

    /// A body that is already in memory.
    public init(bytes: [UInt8]) {
        self.init {
            var sent = false
            return {
                if sent || bytes.isEmpty { return nil }
                sent = true
                return bytes
            }
        }
    }

    /// Reads chunks one by one.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextChunk: () async throws -> [UInt8]?

        /// The next chunk, or nil at the end of the body.
        public mutating func next() async throws -> [UInt8]? {
            try await nextChunk()
        }
    }

    /// Starts reading.
    public func makeAsyncIterator() -> AsyncIterator {
        make()
    }

    /// The whole body. Throws ``QRLoginClientError/invalidResponse(_:)`` past `limit` bytes.
    public func collect(upTo limit: Int = 1 << 20) async throws -> Data {
        var data = Data()
        for try await chunk in self {
            data.append(contentsOf: chunk)
            if data.count > limit { throw QRLoginClientError.invalidResponse("response body larger than \(limit) bytes") }
        }
        return data
    }
}

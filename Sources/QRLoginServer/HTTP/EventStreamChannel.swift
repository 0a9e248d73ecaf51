import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import QRLoginCore

/// Hummingbird's HTTP/1 child channel, except that a connection whose first request is a PC's
/// event stream is served by an ``EventStreamHandler`` on the connection's event loop, with no
/// Swift task and no async channel held for it while the PC waits.
///
/// Why: Hummingbird serves each connection from one task reading an `NIOAsyncChannel`, and
/// that model holds about 12 KB per connection before its first request and about 30 KB for a
/// waiting PC (a task keeps the memory of its deepest call until it ends). Ten thousand PCs
/// waiting for their phones would hold 300 MB for doing nothing. A plain channel handler holds
/// a few KB (BENCHMARKS.md, "Memory per waiting PC").
///
/// Every other connection is Hummingbird's exactly as with `.http1()`: the same pipeline, the
/// idle timeout and the request loop. Only the `NIOAsyncChannel` is created when the first
/// request has been seen instead of before, so that a connection taken by a stream never has
/// one. A stream on a connection that already served a request of Hummingbird's stays on
/// Hummingbird's path (the route in ``LoginRequestRoutes``), which gives the same events;
/// clients that want the small path open the stream on a connection of its own. The OAuth
/// endpoints' form POSTs are answered before Hummingbird sees them, by the same router, from
/// ``DirectRequestHandler``; a connection that has only made such requests counts as new here.
struct QRLoginHTTP1Channel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// Completed at the first request: the async channel for Hummingbird to serve, or nil
        /// when an event stream took the connection or the connection ended before a request.
        let http: EventLoopFuture<HTTP1Channel.Value?>
    }

    let http: HTTP1Channel
    let streams: EventStreams
    /// The requests served from the channel handler (``DirectRequestHandler``).
    let direct: DirectRoutes

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // The pipeline of HTTP1Channel.setup, less the async channel (added by
            // FirstRequestHandler when a request turns out to be Hummingbird's).
            let configuration = http.configuration
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            limits.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            limits.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            // Reads start at 1 KB instead of NIO's 2 KB: a request of the protocol, proof and
            // credential included, is under 1 KB, larger reads grow the buffer as before, and
            // the buffer stays with the connection for as long as it lives (a waiting PC's).
            try channel.syncOptions?.setOption(
                ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65_536)
            )
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits
            )
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(configuration.additionalChannelHandlers())
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: configuration.idleTimeout.map { .init($0) }, logger: logger))
            try pipeline.addHandler(DirectRequestHandler(routes: direct))
            let decided = channel.eventLoop.makePromise(of: HTTP1Channel.Value?.self)
            try pipeline.addHandler(FirstRequestHandler(streams: streams, logger: logger, decided: decided))
            return Value(channel: channel, http: decided.futureResult)
        }
    }

    func handle(value: Value, logger: Logger) async {
        // Until the first request arrives this task waits here on a shallow stack; for a
        // connection a stream takes, it ends at once.
        guard let asyncChannel = try? await value.http.get() else { return }
        await http.handle(value: asyncChannel, logger: logger)
    }
}

/// What serves the PCs' event streams outside Hummingbird's router: the login service, and
/// which requests are such streams. A class: every stream holds a reference to it, not a copy
/// of the service.
final class EventStreams: Sendable {
    let service: LoginService
    /// Sent as `Server`, as Hummingbird sends its configured server name.
    let serverName: String?

    init(service: LoginService, serverName: String?) {
        self.service = service
        self.serverName = serverName
    }

    static let prefix = "/api/v1/qr/"

    /// The request id if `request` is a PC's event stream this path serves: `GET` on
    /// `/api/v1/qr/{id}` (a query is allowed and, as on the route, ignored) asking for
    /// `text/event-stream`, with an id of the characters ids are made of. Anything else,
    /// odd spellings included, goes to the router, which answers it as it always has.
    func streamId(of request: HTTPRequest) -> String? {
        guard request.method == .get, let target = request.path, target.hasPrefix(Self.prefix),
              request.headerFields[.accept]?.contains("text/event-stream") == true
        else { return nil }
        let rest = target.utf8.dropFirst(Self.prefix.utf8.count)
        let id = rest.prefix { $0 != UInt8(ascii: "?") }
        guard (1...64).contains(id.count), id.allSatisfy(Self.isIdentifierByte) else { return nil }
        return String(Substring(id))
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}

/// The last handler of a new connection until its first request is complete. A PC's event
/// stream without a body takes the connection (``EventStreamHandler``); anything else is
/// handed to Hummingbird: the async channel is created, the parts seen so far are passed on,
/// and this handler leaves the pipeline.
final class FirstRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let streams: EventStreams
    private let logger: Logger
    private var decided: EventLoopPromise<HTTP1Channel.Value?>?
    /// A stream's head, kept until the request's end shows it has no body.
    private var stream: (head: HTTPRequest, id: String)?

    init(streams: EventStreams, logger: Logger, decided: EventLoopPromise<HTTP1Channel.Value?>) {
        self.streams = streams
        self.logger = logger
        self.decided = decided
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard decided != nil else { return context.fireChannelRead(data) }
        switch (unwrapInboundIn(data), stream) {
        case (.head(let head), nil):
            if let id = streams.streamId(of: head) {
                stream = (head, id)
            } else {
                handToHummingbird(context: context, replaying: [data])
            }
        case (.end, let stream?):
            takeForStream(context: context, head: stream.head, id: stream.id)
        default:
            // A body after a stream's head (or parts out of order): the router's business.
            let replay = stream.map { [wrapInboundOut(.head($0.head))] } ?? []
            handToHummingbird(context: context, replaying: replay + [data])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed first request: Hummingbird answers it as it would have (400, then the
        // connection closes). The error goes on before this handler leaves the pipeline: from
        // a removed handler it would go nowhere, and the client would wait for an answer.
        if decided != nil {
            handToHummingbird(context: context, replaying: []) { $0.fireErrorCaught(error) }
        } else {
            context.fireErrorCaught(error)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side before a request of Hummingbird's: Hummingbird ends the
        // connection. The event goes on before this handler leaves the pipeline (as an error
        // does, above), or nothing would close the connection until its idle timeout.
        if case ChannelEvent.inputClosed = event, decided != nil {
            handToHummingbird(context: context, replaying: stream.map { [wrapInboundOut(.head($0.head))] } ?? []) {
                $0.fireUserInboundEventTriggered(event)
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        decide(nil)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        decide(nil)
    }

    private func decide(_ value: HTTP1Channel.Value?) {
        let promise = decided
        decided = nil
        promise?.succeed(value)
    }

    /// Gives the connection to Hummingbird: its async channel is made, `parts` are passed on,
    /// then `then` runs with this handler's context (to pass an error or event on), and this
    /// handler leaves the pipeline. Nothing passed on after that would arrive.
    private func handToHummingbird(
        context: ChannelHandlerContext, replaying parts: [NIOAny], then: (ChannelHandlerContext) -> Void = { _ in }
    ) {
        do {
            // As HTTP1Channel.setup makes it; its handlers go after this one.
            let asyncChannel = try HTTP1Channel.Value(
                wrappingChannelSynchronously: context.channel, configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            decide(asyncChannel)
            for part in parts { context.fireChannelRead(part) }
            then(context)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            logger.error("could not hand a connection to the router", metadata: ["qrlogin.error": "\(error)"])
            decide(nil)
            context.close(promise: nil)
        }
    }

    /// Replaces the HTTP/1 pipeline with the encoder and an ``EventStreamHandler``: nothing
    /// more is read as HTTP on this connection (whatever the client sends is dropped), and the
    /// handlers and buffers for requests are freed. Our configuration adds no handlers of its
    /// own (`additionalChannelHandlers`); one that read request parts would have to go too.
    private func takeForStream(context: ChannelHandlerContext, head: HTTPRequest, id: String) {
        let pipeline = context.pipeline.syncOperations
        let handler = EventStreamHandler(streams: streams, logger: logger, id: id)
        do {
            try pipeline.addHandler(handler)
            // Codec first and decoder last: the decoder hands any bytes it still holds to the
            // handler after it, which must then be the stream's, which ignores them.
            if let codec = try? pipeline.context(handlerType: HTTP1ToHTTPServerCodec.self) {
                pipeline.removeHandler(context: codec, promise: nil)
            }
            if let state = try? pipeline.context(handlerType: HTTPConnectionStateHandler.self) {
                pipeline.removeHandler(context: state, promise: nil)
            }
            if let direct = try? pipeline.context(handlerType: DirectRequestHandler.self) {
                pipeline.removeHandler(context: direct, promise: nil)
            }
            decide(nil)
            pipeline.removeHandler(context: context, promise: nil)
            if let decoder = try? pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
                pipeline.removeHandler(context: decoder, promise: nil)
            }
            handler.start(head)
        } catch {
            logger.error("could not take a connection for an event stream", metadata: ["qrlogin.error": "\(error)"])
            decide(nil)
            context.close(promise: nil)
        }
    }
}

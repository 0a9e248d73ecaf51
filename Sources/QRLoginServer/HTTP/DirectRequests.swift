import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The requests a connection's ``DirectRequestHandler`` serves itself, and how: the same router
/// and middleware as every other request, called from the channel handler instead of from
/// Hummingbird's per-connection task.
///
/// Why: Hummingbird passes every request part through an `NIOAsyncChannel` to the
/// connection's task and every response part back through its writer, with a trip through the
/// event loop's queue at each step. The OAuth endpoints are called by devices and resource
/// servers all the time; served from here, an introspection costs about a tenth less server
/// CPU (BENCHMARKS.md, "Requests served from the channel handler"). The answer is the
/// router's, so it is the same on either path; only its delivery differs.
///
/// Taken: a `POST` to one of ``paths`` exactly (no query) with a `Content-Length` of at most
/// ``maxBody`` bytes, no `Transfer-Encoding` and no `Expect`. Everything else, and every
/// request while an earlier one on the connection is still Hummingbird's, goes on to
/// Hummingbird unchanged.
final class DirectRoutes: Sendable {
    let responder: RouterResponder<AppRequestContext>
    let paths: Set<String>
    let maxBody: Int
    /// Sent as `Server`, as Hummingbird sends its configured server name.
    let serverName: String?
    let logger: Logger
    private let dates = HTTPDateCache()
    /// Answers under way, and who waits for there to be none (``drained()``).
    private let answering = Mutex<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))

    init(responder: RouterResponder<AppRequestContext>, paths: Set<String>, maxBody: Int, serverName: String?, logger: Logger) {
        self.responder = responder
        self.paths = paths
        self.maxBody = maxBody
        self.serverName = serverName
        self.logger = logger
    }

    /// An answer begins: the server's shutdown waits for it (``drained()``).
    func began() {
        answering.withLock { $0.count += 1 }
    }

    /// An answer has been handed to its connection (or its connection is gone).
    func ended() {
        let waiters = answering.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no answer is under way. A connection whose client left keeps no one
    /// waiting for its answer, but the answer still runs, and must not meet a closed store.
    func drained() async {
        await withCheckedContinuation { continuation in
            let now = answering.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Whether this path serves `head` (see the type's documentation).
    func takes(_ head: HTTPRequest) -> Bool {
        guard head.method == .post, let path = head.path, paths.contains(path),
              let length = head.headerFields[.contentLength].flatMap({ Int($0) }), (0...maxBody).contains(length),
              head.headerFields[.transferEncoding] == nil, head.headerFields[.expect] == nil
        else { return false }
        return true
    }

    /// The router's response to `head` with `body`, as Hummingbird's application makes it: a
    /// request id on the logger, an error no middleware answered as 500, `Date` and `Server`.
    func respond(to head: HTTPRequest, body: ByteBuffer, channel: any Channel) async -> Response {
        var logger = self.logger
        logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        return await withLogger(logger) { logger in
            let context = AppRequestContext(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: Request(head: head, body: RequestBody(buffer: body)), context: context)
            } catch {
                logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.date] = dates.now()
            if let serverName { response.headers[.server] = serverName }
            return response
        }
    }
}

/// Keeps the server's shutdown from closing the store under an answer of ``DirectRoutes``
/// still under way: Hummingbird's server waits for the connections, but a connection whose
/// client left ends before its answer does.
struct DirectAnswersService: Service {
    let routes: DirectRoutes

    func run() async throws {
        try? await gracefulShutdown()
        await routes.drained()
    }
}

/// Serves the requests ``DirectRoutes`` takes on its connection, in order with the ones it
/// passes on to Hummingbird (HTTP/1.1 answers pipelined requests in the order they came).
///
/// A taken request is collected here (its length is known and small), answered by a task of its
/// own, and written from here. While it is being answered nothing else is passed on: later
/// parts, errors and events wait in ``held``, and reading stops (its `read` is held back) so a
/// client cannot make the server buffer without bound. A request is taken only while no
/// request passed on to Hummingbird is still unanswered, which this handler sees as the
/// responses' ends go out through it.
final class DirectRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case idle
        /// Passing a request on to Hummingbird, until its end.
        case passing
        case collecting(HTTPRequest, ByteBuffer)
        case answering
        /// The answer asked to close the connection: whatever else comes is dropped, and reading
        /// goes on only so that the client's close is seen.
        case closing
    }

    private enum Held {
        case read(NIOAny)
        case error(any Error)
        case event(Any)
    }

    private let routes: DirectRoutes
    private var state = State.idle
    /// Requests passed on whose response has not gone out yet.
    private var passedOn = 0
    private var held: [Held] = []
    private var readHeld = false
    /// A request passed on asked to close the connection: Hummingbird answers nothing after
    /// it, and nothing more is taken here either.
    private var closeAsked = false
    /// Taken out of the pipeline (an event stream took the connection).
    private var removed = false

    init(routes: DirectRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .answering = state { return held.append(.read(data)) }
        if case .closing = state { return }
        switch (state, unwrapInboundIn(data)) {
        case (.idle, .head(let head)):
            if passedOn == 0, !closeAsked, routes.takes(head) {
                var body = context.channel.allocator.buffer(capacity: 0)
                body.reserveCapacity(head.headerFields[.contentLength].flatMap { Int($0) } ?? 0)
                state = .collecting(head, body)
            } else {
                passedOn += 1
                if head.headerFields[.connection] == "close" { closeAsked = true }
                state = .passing
                context.fireChannelRead(data)
            }
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(data)
        case (.collecting(let head, var body), .body(var part)):
            // The decoder holds a body to its Content-Length, which takes() bounded.
            state = .idle
            body.writeBuffer(&part)
            state = .collecting(head, body)
        case (.collecting(let head, let body), .end):
            answer(context: context, head: head, body: body)
        default:
            // A body or end without a head: Hummingbird's to refuse, as it always has.
            context.fireChannelRead(data)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed request after one being answered: Hummingbird's 400 comes after the answer.
        if case .answering = state { return held.append(.error(error)) }
        if case .closing = state { return }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client's half-close: passed on after the answer, or Hummingbird would end the
        // connection's output before it.
        if case .answering = state { return held.append(.event(event)) }
        // Once closing, NIO ends the connection itself when the client closes its side.
        if case .closing = state { return }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        // An answer under way is not cancelled: as on Hummingbird's path, a request that
        // reached the router runs to its end (a refresh commits or not as a whole either way).
        held = []
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Hummingbird's responses; this handler's own are written past it.
        if case .end = unwrapOutboundIn(data) { passedOn = max(0, passedOn - 1) }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        if case .answering = state {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func answer(context: ChannelHandlerContext, head: HTTPRequest, body: ByteBuffer) {
        state = .answering
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        let (routes, channel) = (self.routes, context.channel)
        routes.began()
        Task {
            defer { routes.ended() }
            let response = await routes.respond(to: head, body: body, channel: channel)
            let writer = DirectBodyWriter(loop: loop, bound: bound, known: response.body.contentLength != nil)
            writer.start(response.head)
            do {
                try await response.body.write(writer)
            } catch {
                // The body failed half written: the connection cannot carry another answer.
                writer.abort()
            }
            writer.finished(closing: head.headerFields[.connection] == "close")
        }
    }

    /// Called on the loop once the answer is handed to the connection. Unless the connection is
    /// closing, what waited is taken up again, in order, and reading resumes.
    fileprivate func answered(context: ChannelHandlerContext, goOn: Bool) {
        guard goOn else {
            // Closing: nothing more is answered on this connection.
            state = .closing
            held = []
            if readHeld {
                readHeld = false
                context.read()
            }
            return
        }
        guard case .answering = state else { return }
        state = .idle
        // By index, and the replayed ones dropped at the end: a client may have pipelined
        // thousands of small requests behind the answer.
        var next = 0
        while next < held.count {
            if case .answering = state { break }
            let item = held[next]
            next += 1
            if removed {
                // An event stream took the connection while this replayed its request: what
                // came after goes on from the pipeline's start (request bytes are the
                // stream's to ignore; a half-close or error ends it).
                switch item {
                case .read: break
                case .error(let error): context.pipeline.syncOperations.fireErrorCaught(error)
                case .event(let event): context.pipeline.syncOperations.fireUserInboundEventTriggered(event)
                }
                continue
            }
            switch item {
            case .read(let data): channelRead(context: context, data: data)
            case .error(let error): context.fireErrorCaught(error)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            }
        }
        held.removeFirst(next)
        if removed {
            held = []
            return
        }
        // Hummingbird's async channel hands what it read (and errors) on to its task at a
        // read's end.
        if next > 0 { context.fireChannelReadComplete() }
        if case .answering = state { return }
        if readHeld {
            readHeld = false
            context.read()
        }
    }
}

/// Writes an answer of ``DirectRequestHandler`` from its task onto the connection. A body of
/// known length (every answer of the OAuth endpoints) is gathered and written with its head
/// and end at once, up to ``gatherLimit`` bytes; a streamed one is written as it comes, each
/// part awaited, as Hummingbird's writer does.
private final class DirectBodyWriter: ResponseBodyWriter, @unchecked Sendable {
    typealias Bound = NIOLoopBound<(handler: DirectRequestHandler, context: ChannelHandlerContext)>

    static let gatherLimit = 64 * 1024

    private let loop: any EventLoop
    private let bound: Bound
    private let known: Bool
    /// Parts not yet handed to the loop, and their bytes (only the answering task uses them).
    private var parts: [HTTPResponsePart] = []
    private var gathered = 0
    private var failed = false

    init(loop: any EventLoop, bound: Bound, known: Bool) {
        self.loop = loop
        self.bound = bound
        self.known = known
    }

    func start(_ head: HTTPResponse) {
        parts.append(.head(head))
    }

    func write(_ buffer: ByteBuffer) async throws {
        parts.append(.body(buffer))
        gathered += buffer.readableBytes
        if !known || gathered > Self.gatherLimit {
            gathered = 0
            try await send().get()
        }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {
        parts.append(.end(trailingHeaders))
    }

    func abort() {
        failed = true
    }

    /// Hands the gathered parts to the loop and flushes; the future completes when they are
    /// written. `then` runs on the loop right after, with that future.
    @discardableResult
    private func send(then: ((DirectRequestHandler, ChannelHandlerContext, EventLoopFuture<Void>) -> Void)? = nil) -> EventLoopFuture<Void> {
        let parts = self.parts
        self.parts = []
        let bound = self.bound
        let write = { () -> EventLoopFuture<Void> in
            let (handler, context) = bound.value
            let promise = context.eventLoop.makePromise(of: Void.self)
            for (index, part) in parts.enumerated() {
                context.write(NIOAny(part), promise: index == parts.count - 1 ? promise : nil)
            }
            if parts.isEmpty { promise.succeed() }
            context.flush()
            then?(handler, context, promise.futureResult)
            return promise.futureResult
        }
        if loop.inEventLoop { return write() }
        return loop.flatSubmit(write)
    }

    /// Sends what is left with the end, then lets the handler go on. The connection is closed
    /// once the answer is written when the request asked for it (`Connection: close`), and at
    /// once after a body that failed half written.
    func finished(closing: Bool) {
        if failed { parts.removeAll() }
        let failed = self.failed
        send { handler, context, written in
            if failed {
                context.close(promise: nil)
            } else if closing {
                // As Hummingbird does: the output ends once the answer is written, and the
                // connection closes when the client closes its side.
                written.whenComplete { _ in context.close(mode: .output, promise: nil) }
            }
            handler.answered(context: context, goOn: !failed && !closing)
        }
    }
}

/// ``HTTPDate/now()`` made once a second, as Hummingbird's own date cache does.
final class HTTPDateCache: Sendable {
    private let cache = Mutex<(second: time_t, text: String)>((-1, ""))

    func now() -> String {
        let second = time(nil)
        return cache.withLock { cached in
            if cached.second != second { cached = (second, HTTPDate.format(second)) }
            return cached.text
        }
    }
}


import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import QRLoginCore

/// A PC's event stream (`GET /api/v1/qr/{id}`, `Accept: text/event-stream`) served by a channel
/// handler on its connection's event loop: the same checks and the same events as the route in
/// ``LoginRequestRoutes``, but while the PC waits nothing holds a task. The stream is a small
/// object driven by callbacks: the notifier's signal, a ``WaitTimer`` entry for the heartbeat
/// and the request's deadline, and the server's quiesce event on graceful shutdown. The proof
/// check, the store reads and the events' JSON run in short-lived tasks whose memory is freed
/// when they end.
///
/// Installed by ``FirstRequestHandler`` for a connection whose first request is such a stream;
/// the connection closes when the stream ends (the response says `Connection: close`).
final class EventStreamHandler: ChannelInboundHandler {
    /// Never unwrapped: the request was read before this handler took over, and whatever the
    /// client sends afterwards (bytes, or parts the decoder still held) is dropped.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = HTTPServerResponsePart

    private enum Phase {
        /// The proof and poll secret are being checked.
        case authorizing
        /// The response head is out; events follow.
        case streaming
        /// The stream ended or the connection closed; everything is given back.
        case ended
    }

    private let streams: EventStreams
    private var service: LoginService { streams.service }
    private let logger: Logger
    private let id: String
    private var context: ChannelHandlerContext?
    private var phase = Phase.authorizing
    /// The state whose event was sent last, and the deadline of the request as then read.
    /// The request itself is not kept while the PC waits: a change is read afresh.
    private var sent: LoginState?
    private var deadline: Date?
    /// This stream's pickup number once authorised (see ``PickupLedger``).
    private var pickup: UInt64?
    private var subscription: LoginEventSubscription?
    private var waker: Waker?
    private var timerEntry: WaitTimerEntry?
    /// Numbers the waits, so that a timer call for an earlier wait is ignored.
    private var waitTag: UInt64 = 0
    /// A task is working for this stream (an event, a read); callbacks wait for it.
    private var busy = false
    /// A change was signalled while busy or before the first event.
    private var signalled = false
    private var shuttingDown = false
    /// Counted among the waiting PCs (``ServerMetrics``) since the stream began.
    private var counted = false
    /// When the request arrived (uptime nanoseconds), for the request metrics.
    private var arrived: UInt64 = 0

    init(streams: EventStreams, logger: Logger, id: String) {
        self.streams = streams
        self.logger = logger
        self.id = id
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        end()
        self.context = nil
    }

    /// Starts the stream for `request`, whose parts have all been read.
    func start(_ request: HTTPRequest) {
        guard let context else { return }
        let path = request.path ?? ""
        if logger.logLevel <= .info {
            logger.info("Request", metadata: ["hb.request.path": .string(path), "hb.request.method": .string(request.method.rawValue)])
        }
        arrived = NIODeadline.now().uptimeNanoseconds
        let waker = Waker(NIOLoopBound(self, eventLoop: context.eventLoop))
        self.waker = waker
        // Subscribed before the request is read, so a change between that read and the first
        // wait is not lost. A subscription only wakes this stream; the pickup, which decides
        // who may collect the token, begins only once the PC has proved itself.
        let subscription = LoginEventSubscription(timer: service.waitTimer) { waker.signal() }
        self.subscription = subscription
        service.notifier.subscribe(subscription, to: id)

        let (service, id) = (self.service, self.id)
        let proof = request.headerFields[.dpop]
        let authorization = request.headerFields[.authorization]
        let pathOnly = String(path.prefix { $0 != "?" })
        run({
            let login = try await service.authorizePC(
                id: id, pollSecret: try Credentials.token(inHeader: authorization, scheme: "Bearer"), proof: proof,
                method: "GET", path: pathOnly
            )
            return (login, try await service.pickups.begin(id))
        }, then: { $0.authorized($1) })
    }

    private func authorized(_ result: Result<(LoginRequest, UInt64), any Error>) {
        guard phase == .authorizing else {
            // The stream ended while authorising: give the pickup back.
            if case .success(let (_, pickup)) = result { service.pickups.end(id, pickup) }
            return
        }
        switch result {
        case .failure(let error):
            answer(ProblemMiddleware<AppRequestContext>.problem(for: error, logger: logger))
        case .success(let (login, pickup)):
            self.pickup = pickup
            phase = .streaming
            if let metrics = service.metrics {
                metrics.waiting(.sse, 1)
                counted = true
                recordRequest(status: 200)
            }
            var headers = baseHeaders()
            headers.add(name: "Content-Type", value: "text/event-stream")
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "X-Accel-Buffering", value: "no")
            context?.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            if signalled {
                refresh()
            } else {
                step(login)
            }
        }
    }

    /// Sends the event of `login`'s current state if it was not sent yet, else waits.
    private func step(_ login: LoginRequest) {
        guard phase == .streaming, !busy else { return }
        let state = login.effectiveState(at: service.clock.now)
        guard state != sent else {
            deadline = login.deadline
            // A signal that came while this copy was being read may be for a change the read
            // missed: read again rather than wait for the next signal, which may never come.
            return signalled ? refresh() : wait()
        }
        busy = true
        let (service, pickup) = (self.service, self.pickup ?? 0)
        run({ try await LoginRequestRoutes.makeEvent(for: login, in: state, pickup: pickup, service: service) }, then: { handler, result in
            handler.eventMade(result, for: state, deadline: login.deadline)
        })
    }

    private func eventMade(_ result: Result<(bytes: ByteBuffer, ends: Bool), any Error>, for state: LoginState, deadline: Date) {
        busy = false
        guard phase == .streaming else { return }
        switch result {
        case .failure(let error):
            logger.debug("event stream ended", metadata: ["qrlogin.error": "\(error)"])
            finish()
        case .success(let event):
            write(event.bytes)
            if event.ends { return finish() }
            sent = state
            self.deadline = deadline
            if signalled {
                refresh()
            } else {
                wait()
            }
        }
    }

    /// Waits for a signal, the next heartbeat or the request's deadline, whichever is first.
    private func wait() {
        guard let deadline, let waker else { return }
        if shuttingDown {
            write(LoginRequestRoutes.shuttingDown)
            return finish()
        }
        let untilDeadline = deadline.timeIntervalSince(service.clock.now)
        let wait = min(service.settings.heartbeat, max(0, untilDeadline))
        waitTag += 1
        timerEntry = service.waitTimer.schedule(after: .milliseconds(Int64(wait * 1000) + 2), waker, tag: waitTag)
    }

    /// The notifier's signal, on the event loop.
    fileprivate func wasSignalled() {
        switch phase {
        case .ended:
            return
        case .authorizing:
            signalled = true
        case .streaming:
            if busy {
                signalled = true
            } else {
                cancelWait()
                refresh()
            }
        }
    }

    /// Reads the request again after a signal.
    private func refresh() {
        signalled = false
        busy = true
        let (service, id) = (self.service, self.id)
        run({ try await service.store.loginRequest(id: id) }, then: { $0.refreshed($1) })
    }

    private func refreshed(_ result: Result<LoginRequest?, any Error>) {
        busy = false
        guard phase == .streaming else { return }
        switch result {
        case .success(let fresh?):
            step(fresh)
        case .success(nil):
            finish()
        case .failure(let error):
            logger.debug("event stream ended", metadata: ["qrlogin.error": "\(error)"])
            finish()
        }
    }

    /// The timer's call for wait `tag`, on the event loop.
    fileprivate func waitEnded(_ tag: UInt64) {
        guard phase == .streaming, !busy, tag == waitTag, let deadline else { return }
        timerEntry = nil
        if deadline > service.clock.now {
            write(LoginRequestRoutes.heartbeat)
            wait()
        } else {
            // Past the deadline the state the PC sees changes (to expired): read it.
            refresh()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            // Graceful shutdown: end the stream cleanly, as the route's streams do.
            shuttingDown = true
            if phase == .streaming, !busy {
                cancelWait()
                wait()
            }
        case ChannelEvent.inputClosed:
            // The PC closed its side: it is gone (event-stream clients never half-close).
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("event stream ended", metadata: ["qrlogin.error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Writing

    private func baseHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Date", value: HTTPDate.now())
        if let serverName = streams.serverName { headers.add(name: "Server", value: serverName) }
        // Nothing more is read on this connection once the stream has it.
        headers.add(name: "Connection", value: "close")
        return headers
    }

    private func write(_ bytes: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
    }

    /// Counts this request as the router's streams are counted (``RequestMetricsMiddleware``).
    private func recordRequest(status: Int) {
        service.metrics?.request(method: "GET", route: "/api/v1/qr/{id}", status: status, nanoseconds: NIODeadline.now().uptimeNanoseconds &- arrived)
    }

    /// Answers with a problem document instead of a stream, and closes.
    private func answer(_ problem: ProblemAnswer) {
        guard let context else { return }
        recordRequest(status: problem.status.code)
        var headers = baseHeaders()
        for field in problem.headers { headers.add(name: field.name.rawName, value: field.value) }
        headers.add(name: "Content-Length", value: String(problem.body.readableBytes))
        let status = HTTPResponseStatus(statusCode: problem.status.code, reasonPhrase: problem.status.reasonPhrase)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(problem.body))), promise: nil)
        phase = .streaming
        finish()
    }

    /// Ends the response and closes the connection.
    private func finish() {
        guard phase == .streaming, let context else { return end() }
        end()
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    // MARK: Lifetime

    private func cancelWait() {
        if let entry = timerEntry { service.waitTimer.cancel(entry) }
        timerEntry = nil
        waitTag += 1
    }

    /// Gives back the subscription, the wait and the pickup; later callbacks do nothing.
    private func end() {
        guard phase != .ended else { return }
        phase = .ended
        if counted {
            service.metrics?.waiting(.sse, -1)
            counted = false
        }
        cancelWait()
        if let subscription { service.notifier.unsubscribe(subscription, from: id) }
        subscription = nil
        if let pickup { service.pickups.end(id, pickup) }
        pickup = nil
        waker = nil
    }

    /// Runs `work` in a task of its own and `then` with its result on the event loop (unless
    /// the connection has gone by then).
    private func run<T: Sendable>(_ work: @escaping @Sendable () async throws -> T, then: @escaping (EventStreamHandler, Result<T, any Error>) -> Void) {
        guard let context else { return }
        context.eventLoop.makeFutureWithTask(work).assumeIsolated().whenComplete { result in
            then(self, result)
        }
    }
}

/// Brings the notifier's and the timer's calls, from any thread, to the stream's event loop.
private final class Waker: WaitTimerTarget, Sendable {
    private let stream: NIOLoopBound<EventStreamHandler>

    init(_ stream: NIOLoopBound<EventStreamHandler>) {
        self.stream = stream
    }

    func signal() {
        let stream = self.stream
        stream.eventLoop.execute { stream.value.wasSignalled() }
    }

    func timerFired(_ tag: UInt64) {
        let stream = self.stream
        stream.eventLoop.execute { stream.value.waitEnded(tag) }
    }
}

/// The `Date` header's form (RFC 9110 IMF-fixdate), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        format(time(nil))
    }

    static func format(_ seconds: time_t) -> String {
        var clock = seconds
        var parts = tm()
        gmtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

import CoreMetrics
import Foundation
import Prometheus
import QRLoginCore
import Synchronization

/// What the server counts and times, through the swift-metrics API into a Prometheus registry
/// of its own, which `GET /metrics` serves in Prometheus's text format.
///
/// The registry belongs to the server, not to the process-wide `MetricsSystem`: two servers in
/// one process (the tests) keep their own figures. Every instrument is made once and kept, so
/// a request costs a dictionary lookup under a lock and the instruments' atomic updates.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `qrlogin_http_requests_total` | counter | `method`, `route`, `status` |
/// | `qrlogin_http_request_duration_seconds` | histogram | `method`, `route` |
/// | `qrlogin_login_requests_created_total` | counter | `kind`: `qr`, `device_grant`, `app` |
/// | `qrlogin_login_requests_ended_total` | counter | `state`: `confirmed`, `denied`, `expired`, `cancelled` |
/// | `qrlogin_login_confirm_seconds` | histogram | time from create to confirm |
/// | `qrlogin_waiting_pcs` | gauge | `transport`: `sse`, `long_poll` |
/// | `qrlogin_dpop_proofs_refused_total` | counter | `reason` |
/// | `qrlogin_rate_limited_total` | counter | `route` (the limit's scope) |
/// | `qrlogin_store_call_duration_seconds` | histogram | `operation` |
public final class ServerMetrics: Sendable {
    private typealias Timer = CoreMetrics.Timer
    private typealias Counter = CoreMetrics.Counter
    private typealias Meter = CoreMetrics.Meter

    /// The registry `/metrics` serves.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let requests = Mutex<[RequestKey: (Counter, Timer)]>([:])
    private let counters = Mutex<[CounterKey: Counter]>([:])
    private let timers = Mutex<[CounterKey: Timer]>([:])
    private let waiting: [WaitTransport: Meter]
    private let confirmTimer: Timer

    /// How a PC waits.
    public enum WaitTransport: String, Sendable, CaseIterable {
        case sse, longPoll = "long_poll"
    }

    private struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    private struct CounterKey: Hashable {
        var name: String
        var label: String
        var value: String
    }

    /// A server's metrics, in a new registry.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        let fast: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        factory.durationHistogramBuckets = [
            "qrlogin_http_request_duration_seconds": fast,
            "qrlogin_store_call_duration_seconds": [.microseconds(25)] + fast.prefix(14),
            "qrlogin_login_confirm_seconds": [1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300].map { .seconds($0) },
        ]
        self.factory = factory
        var waiting: [WaitTransport: Meter] = [:]
        for transport in WaitTransport.allCases {
            waiting[transport] = Meter(label: "qrlogin_waiting_pcs", dimensions: [("transport", transport.rawValue)], factory: factory)
        }
        self.waiting = waiting
        self.confirmTimer = Timer(label: "qrlogin_login_confirm_seconds", dimensions: [], factory: factory)
        // Every series a dashboard sums exists from the start, at zero.
        for kind in ["qr", "device_grant", "app"] { counter("qrlogin_login_requests_created_total", "kind", kind).increment(by: 0) }
        for state in ["confirmed", "denied", "expired", "cancelled"] { counter("qrlogin_login_requests_ended_total", "state", state).increment(by: 0) }
    }

    // MARK: Recording

    /// One HTTP request answered with `status` after `nanoseconds`. `route` is the matched
    /// pattern (`/api/v1/qr/{id}`), never the raw path, so ids do not become series.
    public func request(method: String, route: String, status: Int, nanoseconds: UInt64) {
        let key = RequestKey(method: method, route: route, status: status)
        let (counter, timer) = requests.withLock { table in
            if let pair = table[key] { return pair }
            let pair = (
                Counter(label: "qrlogin_http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory),
                timerFor("qrlogin_http_request_duration_seconds", method: method, route: route)
            )
            table[key] = pair
            return pair
        }
        counter.increment()
        timer.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// A login request was created: `qr` (a PC's QR login), `device_grant` or `app` (an app's
    /// sign-in through the login page).
    public func created(kind: String) {
        counter("qrlogin_login_requests_created_total", "kind", kind).increment()
    }

    /// A login request reached a final state.
    public func ended(_ state: LoginState) {
        counter("qrlogin_login_requests_ended_total", "state", state.rawValue).increment()
    }

    /// A login request was confirmed `seconds` after it was created.
    public func confirmed(after seconds: TimeInterval) {
        ended(.confirmed)
        confirmTimer.recordNanoseconds(Int64(max(0, seconds) * 1_000_000_000))
    }

    /// A PC started (`+1`) or stopped (`-1`) waiting.
    public func waiting(_ transport: WaitTransport, _ change: Int) {
        let meter = waiting[transport]!
        if change > 0 { meter.increment(by: Double(change)) } else { meter.decrement(by: Double(-change)) }
    }

    /// A DPoP proof was refused for `reason`.
    public func proofRefused(_ reason: String) {
        counter("qrlogin_dpop_proofs_refused_total", "reason", reason).increment()
    }

    /// A request was refused by the rate limit of `route`.
    public func rateLimited(_ route: String) {
        counter("qrlogin_rate_limited_total", "route", route).increment()
    }

    /// A store call `operation` took `nanoseconds`.
    public func storeCall(_ operation: String, nanoseconds: UInt64) {
        let key = CounterKey(name: "qrlogin_store_call_duration_seconds", label: "operation", value: operation)
        let timer = timers.withLock { table in
            if let timer = table[key] { return timer }
            let timer = Timer(label: key.name, dimensions: [(key.label, operation)], factory: factory)
            table[key] = timer
            return timer
        }
        timer.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    // MARK: Exposition

    /// Everything in Prometheus's text exposition format (version 0.0.4).
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }

    /// The content type of ``exposition()``.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private func counter(_ name: String, _ label: String, _ value: String) -> Counter {
        let key = CounterKey(name: name, label: label, value: value)
        return counters.withLock { table in
            if let counter = table[key] { return counter }
            let counter = Counter(label: name, dimensions: [(label, value)], factory: factory)
            table[key] = counter
            return counter
        }
    }

    private func timerFor(_ name: String, method: String, route: String) -> Timer {
        let key = CounterKey(name: name, label: method, value: route)
        return timers.withLock { table in
            if let timer = table[key] { return timer }
            let timer = Timer(label: name, dimensions: [("method", method), ("route", route)], factory: factory)
            table[key] = timer
            return timer
        }
    }
}

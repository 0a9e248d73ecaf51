import Hummingbird
import Logging
import NIOCore

/// The listener of `--metrics-port`: a server of its own that answers only `GET /metrics`
/// (and `HEAD`), in Prometheus's text format. Kept off the public port, so the figures are not
/// on the internet by accident: it binds to `--metrics-host`, loopback by default.
enum MetricsListener {
    static func application(metrics: ServerMetrics, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: ProblemMiddleware())
        router.getAndHead("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: ServerMetrics.contentType, .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.exposition()))
            )
        }
        var listenerLogger = logger
        listenerLogger[metadataKey: "qrlogin.listener"] = "metrics"
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "qrlogin"), logger: listenerLogger)
    }
}

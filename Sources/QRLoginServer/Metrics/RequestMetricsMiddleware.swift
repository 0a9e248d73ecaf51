import Hummingbird
import NIOCore

/// Counts and times every request the router answers, by method, matched route and status, into
/// the server's ``ServerMetrics``. Hummingbird's own `MetricsMiddleware` records to the
/// process-wide `MetricsSystem`; this one records to the server's registry, which `/metrics`
/// serves. It runs outside ``ProblemMiddleware``, so a refusal counts with the status the
/// client got.
///
/// The time is until the response head is ready: for an event stream or a long poll that is
/// when the wait began, not when it ended.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = NIODeadline.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, started: started)
            return response
        } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, started: started)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, started: UInt64) {
        let elapsed = NIODeadline.now().uptimeNanoseconds &- started
        metrics.request(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status, nanoseconds: elapsed)
    }
}

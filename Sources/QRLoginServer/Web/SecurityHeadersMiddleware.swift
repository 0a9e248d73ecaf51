import HTTPTypes
import Hummingbird

/// Adds the browser security headers to every page, asset and QR image response: a strict
/// Content-Security-Policy (scripts, styles, images and API calls from this origin only, no
/// inline script, no framing), no referrer (the QR id in `/q/{id}` must not leak to other
/// sites), and no MIME sniffing. Headers a handler set itself are kept.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The policy of every page. `connect-src 'self'`: the pages call only this server's API.
    static var contentSecurityPolicy: String {
        [
            "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
            "connect-src 'self'", "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    static var headers: [(HTTPField.Name, String)] {
        [
            (.contentSecurityPolicy, contentSecurityPolicy),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("Cross-Origin-Opener-Policy")!, "same-origin"),
            (HTTPField.Name("Cross-Origin-Resource-Policy")!, "same-origin"),
        ]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for (name, value) in Self.headers where response.headers[name] == nil {
            response.headers[name] = value
        }
        return response
    }
}

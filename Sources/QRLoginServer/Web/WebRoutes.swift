import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QRCode
import QRCodeRender
import QRLoginCore

/// The browser UI: the PC login page `/`, the phone confirm page `/q/{id}` (the QR's url), the
/// code entry page `/device` (RFC 8628's `verification_uri`, where the phone types a device's
/// user code), the linked devices and apps page `/devices`, their static assets under
/// `/assets/`, and the QR images of login requests. The pages use only the JSON API, like
/// every other client.
struct WebRoutes {
    let service: LoginService
    let publicBaseURL: String
    let assets: WebAssets

    func addRoutes(to router: Router<AppRequestContext>) {
        let web = router.group().add(middleware: SecurityHeadersMiddleware())
        web.getAndHead("/") { _, _ in try page("index.html") }
        web.getAndHead("q/:id") { _, _ in try page("phone.html") }
        web.getAndHead("device") { _, _ in try page("device.html") }
        web.getAndHead("devices") { _, _ in try page("devices.html") }
        web.getAndHead("assets/:name") { _, context in try asset(context.parameters.require("name")) }
        // The contract of every route here, for client generators and fuzzers (docs/openapi.md).
        router.getAndHead("openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(bytes: assets.openAPI))
            )
        }
        web.getAndHead("api/v1/qr/:id/qr.svg") { _, context in
            let svg = try await code(for: context.parameters.require("id")).svg(quietZone: 4)
            return image(Array(svg.utf8), contentType: "image/svg+xml")
        }
        web.getAndHead("api/v1/qr/:id/qr.png") { _, context in
            image(try await code(for: context.parameters.require("id")).png(scale: 8, quietZone: 4), contentType: "image/png")
        }
    }

    private func page(_ name: String) throws -> Response {
        guard let bytes = assets.page(name, publicBaseURL: publicBaseURL) else { throw HTTPError(.notFound) }
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    private func asset(_ name: String) throws -> Response {
        guard !name.hasSuffix(".html"), let file = assets.files[name] else { throw HTTPError(.notFound) }
        return Response(
            status: .ok, headers: [.contentType: file.contentType, .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(bytes: file.bytes))
        )
    }

    /// The QR code of request `id`'s public url, at level M.
    /// - Throws: ``QRLoginError/notFound`` for an unknown request or one in a final state: a
    ///   finished request's code must not be shown again.
    private func code(for id: String) async throws -> QRCode {
        guard let id = try? Validate.identifier(id),
              let request = try await service.store.loginRequest(id: id),
              !request.effectiveState(at: service.clock.now).isFinal
        else { throw QRLoginError.notFound }
        return try QRCode.encode(text: publicBaseURL + "/q/" + request.id, correction: .medium)
    }

    private func image(_ bytes: [UInt8], contentType: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: contentType, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }
}

extension RouterMethods {
    /// Routes GET `path` to `handler`, and HEAD `path` to the same handler with the body taken
    /// off: its status and headers, and the length the body has. Link checkers, monitors and
    /// `curl -I` send HEAD.
    @discardableResult
    func getAndHead<Output: ResponseGenerator>(
        _ path: RouterPath, use handler: @escaping @Sendable (Request, Context) async throws -> Output
    ) -> Self {
        get(path, use: handler)
        return head(path) { request, context in
            let response = try await handler(request, context).response(from: request, context: context)
            var headers = response.headers
            if let length = response.body.contentLength { headers[.contentLength] = String(length) }
            return Response(status: response.status, headers: headers, body: .init())
        }
    }
}

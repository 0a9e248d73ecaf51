import Foundation
import HTTPTypes
import Hummingbird
import QRLoginCore

/// Verifies `Authorization: DPoP <token>` and its `DPoP` proof, and puts the identity into the
/// context. Routes behind it take ``AuthenticatedContext``.
struct DeviceAuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let service: LoginService
    let clients: ClientResolver

    func handle(_ request: Request, context: AppRequestContext, next: (Request, AppRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        let token = try Credentials.token(in: request, scheme: "DPoP")
        context.identity = try await service.authenticate(
            accessToken: token, proof: request.headers[.dpop], method: request.method.rawValue, path: request.uri.path,
            client: clients.client(of: request, peer: context.remoteAddress)
        )
        return try await next(request, context)
    }
}

/// Reads credentials from the `Authorization` header.
enum Credentials {
    /// The credential after `scheme` (case-insensitive), nil when the header is absent.
    /// - Throws: ``QRLoginError/invalidToken`` when another scheme is used, e.g. a DPoP-bound
    ///   token sent as `Bearer` (RFC 9449 §7.1).
    static func token(in request: Request, scheme: String) throws(QRLoginError) -> String? {
        try token(inHeader: request.headers[.authorization], scheme: scheme)
    }

    /// The credential after `scheme` in an `Authorization` header's value.
    static func token(inHeader header: String?, scheme: String) throws(QRLoginError) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == scheme.lowercased() else {
            throw .invalidToken
        }
        // Spaces and tabs around the credential are not part of it (Foundation's trimming
        // bridged through NSString on every authenticated request).
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        var credential = parts[1]
        while let first = credential.first, isBlank(first) { credential.removeFirst() }
        while let last = credential.last, isBlank(last) { credential.removeLast() }
        return String(credential)
    }
}

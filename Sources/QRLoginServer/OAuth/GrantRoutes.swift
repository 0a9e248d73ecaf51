import Foundation
import Hummingbird
import Logging
import QRLoginCore
import QRLoginOAuth

/// The phone's side of the OAuth grants: typing a device's user code, and the apps that hold
/// tokens for the account.
struct GrantRoutes {
    let oauth: OAuthService
    let clients: ClientResolver
    let limiter: RateLimiter

    func addRoutes(to router: Router<AppRequestContext>) {
        let phone = router.group("api/v1")
            .add(middleware: DeviceAuthMiddleware(service: oauth.login, clients: clients))
            .group(context: AuthenticatedContext.self)
        phone.post("device", use: enterUserCode)
        phone.getAndHead("grants", use: list)
        phone.delete("grants/:id", use: revoke)
    }

    /// `POST /api/v1/device {userCode}`: finds the device grant with that code and scans it.
    /// Every attempt counts against limits per client IP and per account (RFC 8628 §5.1), so a
    /// guesser gets a handful of tries a minute against a space of 20^8 codes.
    @Sendable func enterUserCode(_ request: Request, context: AuthenticatedContext) async throws -> ScanView {
        let ip = clients.client(of: request, peer: context.remoteAddress).ip
        try await limiter.check(.userCode, ip: ip)
        try await limiter.check(.userCode, ip: "account:" + context.identity.account.id)
        let body = try await request.decode(as: UserCodeBody.self, context: context)
        let result = try await oauth.login.scan(userCode: body.userCode, by: context.identity)
        context.logger.info("device grant found by user code", metadata: ["qrlogin.request.id": "\(result.request.id)"])
        return ScanView(result, phoneIP: ip)
    }

    /// The apps holding tokens of the account: no cache may keep the list.
    @Sendable func list(_ request: Request, context: AuthenticatedContext) async throws -> EditedResponse<GrantsView> {
        let grants = try await oauth.grants(context.identity)
        return EditedResponse(headers: [.cacheControl: "no-store"], response: GrantsView(grants: grants.map { family, client in
            GrantView(
                id: family.id, client: ScanView.Client(id: family.clientId, name: client?.name ?? family.clientId),
                scopes: family.scopes.map { ScanView.ScopeView(name: $0, description: Scope.describe($0)) },
                createdAt: family.createdAt, expiresAt: family.expiresAt
            )
        }))
    }

    @Sendable func revoke(_ request: Request, context: AuthenticatedContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard ClientRules.isValidId(id) else { throw QRLoginError.grantNotFound }
        try await oauth.revokeGrant(context.identity, id: id)
        return Response(status: .noContent)
    }
}

import Hummingbird
import Logging
import QRLoginCore

/// Registration, sign-in, logout, `me` and devices.
struct AccountRoutes {
    let service: LoginService
    let clients: ClientResolver
    let limiter: RateLimiter

    func addRoutes(to router: Router<AppRequestContext>) {
        let api = router.group("api/v1")
        api.post("accounts", use: register)
        api.post("auth/password", use: signIn)
        api.post("auth/sms/start", use: startCode)
        api.post("auth/sms/verify", use: verifyCode)

        let signedIn = router.group("api/v1")
            .add(middleware: DeviceAuthMiddleware(service: service, clients: clients))
            .group(context: AuthenticatedContext.self)
        signedIn.post("auth/logout", use: logout)
        signedIn.getAndHead("me", use: me)
        signedIn.getAndHead("devices", use: devices)
        signedIn.delete("devices/:deviceId", use: removeDevice)
    }

    @Sendable func register(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<AccountView> {
        try await limiter.check(.register, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: RegisterBody.self, context: context)
        let account = try await service.register(username: body.username, password: body.password, displayName: body.displayName, phone: body.phone)
        return EditedResponse(status: .created, response: AccountView(account))
    }

    @Sendable func signIn(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<SessionView> {
        let client = clients.client(of: request, peer: context.remoteAddress)
        try await limiter.check(.signIn, ip: client.ip)
        let body = try await request.decode(as: PasswordSignInBody.self, context: context)
        let device = try body.device.validated()
        let proof = try await service.verifier.verify(proof: request.headers[.dpop], method: "POST", path: request.uri.path, accessToken: nil)
        let issued = try await service.signIn(username: body.username, password: body.password, device: device, proof: proof, client: client)
        context.logger.info("signed in", metadata: ["qrlogin.account.id": "\(issued.account.id)", "qrlogin.origin": "password"])
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: SessionView(issued))
    }

    @Sendable func startCode(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<StatusOnly> {
        try await limiter.check(.code, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: CodeStartBody.self, context: context)
        try await service.startCodeSignIn(phone: body.phone)
        return EditedResponse(status: .accepted, headers: [.cacheControl: "no-store"], response: StatusOnly(status: "sent"))
    }

    @Sendable func verifyCode(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<SessionView> {
        let client = clients.client(of: request, peer: context.remoteAddress)
        try await limiter.check(.code, ip: client.ip)
        let body = try await request.decode(as: CodeVerifyBody.self, context: context)
        let device = try body.device.validated()
        let proof = try await service.verifier.verify(proof: request.headers[.dpop], method: "POST", path: request.uri.path, accessToken: nil)
        let issued = try await service.verifyCodeSignIn(phone: body.phone, code: body.code, device: device, proof: proof, client: client)
        context.logger.info("signed in", metadata: ["qrlogin.account.id": "\(issued.account.id)", "qrlogin.origin": "sms"])
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: SessionView(issued))
    }

    @Sendable func logout(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        try await service.logout(context.identity)
        return .noContent
    }

    @Sendable func me(_ request: Request, context: AuthenticatedContext) async throws -> MeView {
        MeView(context.identity)
    }

    /// The account's devices, with their last IPs: no cache may keep them.
    @Sendable func devices(_ request: Request, context: AuthenticatedContext) async throws -> EditedResponse<DevicesView> {
        let devices = try await service.devices(context.identity)
        return EditedResponse(
            headers: [.cacheControl: "no-store"], response: DevicesView(devices: devices.map { DeviceView($0, currentId: context.identity.device.id) })
        )
    }

    @Sendable func removeDevice(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let deviceId = try context.parameters.require("deviceId")
        try await service.removeDevice(context.identity, deviceId: deviceId)
        context.logger.info("device removed", metadata: ["qrlogin.device.id": "\(deviceId)"])
        return .noContent
    }
}

struct StatusOnly: ResponseEncodable {
    var status: String
}

import ArgumentParser
import Foundation
import QRLoginClient
import QRLoginCore

/// Runs `body` with the profile's saved login, turning a refused token into a clear message.
func withSavedLogin(_ options: ClientOptions, _ body: (ProfileClient) async throws -> Void) async throws {
    try await runClientCommand {
        try await AsyncHTTPClientTransport.withOwnClient { transport in
            let profile = try ProfileClient.open(options, transport: transport, requireSession: true, hint: "run `qrlogin login --profile \(options.profileName)` (or `qrlogin phone signin`)")
            do {
                try await body(profile)
            } catch let error as QRLoginClientError where error.code == "invalid_token" {
                throw CLIError.failed(tokenRefusedHint(options))
            }
        }
    }
}

/// `qrlogin whoami`: the account and device behind the saved login.
struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who the saved login acts for.")

    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await withSavedLogin(options) { profile in
            let me = try await profile.client.me()
            if json { return try printJSON(me) }
            let origin = me.token.origin == .qr ? "QR code, approved by \(me.token.approvedBy ?? "?")" : me.token.origin.rawValue
            Console.write(table(nil, [
                ["account", "\(sanitized(me.account.displayName)) (\(sanitized(me.account.username)))"],
                ["account id", me.account.id],
                ["device", "\(me.device.id) (\(me.device.type.rawValue), \"\(sanitized(me.device.name))\")"],
                ["logged in by", origin],
                ["since", readable(me.token.createdAt)],
                ["expires", readable(me.token.expiresAt)],
                ["server", profile.client.server],
            ]))
        }
    }
}

/// `qrlogin devices`: the devices linked to the account.
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "devices", abstract: "List the devices linked to the account.")

    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await withSavedLogin(options) { profile in
            let devices = try await profile.client.devices()
            if json { return try printJSON(devices) }
            let rows = devices.map { device in
                [
                    (device.current ? "* " : "  ") + device.id, device.type.rawValue, sanitized(device.name),
                    readable(device.lastSeenAt), device.lastIP, device.approvedBy.map { "QR by \($0.prefix(8))…" } ?? "",
                ]
            }
            Console.write(table(["  ID", "TYPE", "NAME", "LAST SEEN", "LAST IP", "LINKED"], rows))
        }
    }
}

/// `qrlogin revoke DEVICE_ID`: remote logout of a device.
struct RevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Log a device of the account out (all of its tokens stop working).")

    @OptionGroup var options: ClientOptions
    // Device ids are base64url and may begin with '-', which would otherwise read as an option.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The device id, as `qrlogin devices` shows it.", valueName: "device-id"))
    var deviceIds: [String] = []
    @Flag(help: "Print JSON.") var json = false

    var deviceId: String { deviceIds[0] }

    func validate() throws {
        guard deviceIds.count == 1 else { throw ValidationError("give exactly one device id, as `qrlogin devices` shows it") }
    }

    func run() async throws {
        try await withSavedLogin(options) { profile in
            try await profile.client.revoke(deviceId: deviceId)
            if deviceId == profile.client.deviceId { try profile.store.deleteSession() }
            if json { return try printJSON(["revoked": deviceId]) }
            Console.write("Revoked \(deviceId): its tokens no longer work.\n")
        }
    }
}

/// `qrlogin logout`: revoke the saved token and forget it.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logout", abstract: "Log this profile out: revoke its token and forget it.")

    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await runClientCommand {
            try await AsyncHTTPClientTransport.withOwnClient { transport in
                let profile = try ProfileClient.open(options, transport: transport, requireSession: true, hint: "nothing to log out of")
                var note = ""
                do {
                    try await profile.client.logout()
                } catch let error as QRLoginClientError where error.code == "invalid_token" {
                    note = " (the server had already ended it)"
                }
                try profile.store.deleteSession()
                if json { return try printJSON(["loggedOut": options.profileName]) }
                Console.write("Logged out of profile \"\(options.profileName)\"\(note).\n")
            }
        }
    }
}

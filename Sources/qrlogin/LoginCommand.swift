import ArgumentParser
import Dispatch
import Foundation
import QRCode
import QRCodeRender
import QRLoginClient
import QRLoginCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qrlogin login`: the PC side in a terminal. Shows a QR code, waits for a phone to approve,
/// and saves the device-bound token.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log this terminal in by scanning a QR code with a signed-in phone.",
        discussion: """
        Prints the QR code, its url and a countdown, then live status. On approval the key and
        token are saved (mode 0600) in the profile. An expired code is replaced up to 5 times.
        Ctrl-C cancels the request on the server.
        Exit codes: 0 logged in; 1 denied, expired or cancelled; 69 server unreachable; 64 usage.
        """
    )

    @OptionGroup var options: ClientOptions

    @Option(help: "The name the phone shows for this device. (default: HOSTNAME (qrlogin))")
    var name: String?

    @Option(help: "How many times an expired code is replaced with a new one.")
    var renewals: Int = 5

    func validate() throws {
        guard (0...20).contains(renewals) else { throw ValidationError("--renewals must be 0 to 20") }
    }

    func run() async throws {
        try await runClientCommand {
            try await AsyncHTTPClientTransport.withOwnClient { transport in
                let profile = try ProfileClient.open(options, transport: transport, requireSession: false, hint: "")
                let deviceName = String((self.name ?? "\(ProcessInfo.processInfo.hostName) (qrlogin)").prefix(64)), renewals = self.renewals
                let work = Task { try await Self.login(profile, device: DeviceDescription(type: .cli, name: deviceName), renewals: renewals) }
                // Ctrl-C cancels the wait; the SDK then cancels the request on the server.
                signal(SIGINT, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
                source.setEventHandler { work.cancel() }
                source.resume()
                defer { source.cancel() }
                do {
                    try await work.value
                } catch is CancellationError {
                    await Console.shared.line()
                    throw CLIError.failed("cancelled: the login request was cancelled on the server")
                }
            }
        }
    }

    private static func login(_ profile: ProfileClient, device: DeviceDescription, renewals: Int) async throws {
        let client = profile.client
        let console = Console.shared
        for attempt in 0...renewals {
            let login = try await client.createLogin(device: device)
            if attempt > 0 { await console.line("The code expired; here is a new one (\(attempt + 1) of \(renewals + 1)).") }
            try await show(login)
            let ticker = Task { await countdown(to: login.expiresAt) }
            defer { ticker.cancel() }
            for try await status in client.waitForLogin(login) {
                switch status.state {
                case .pending:
                    continue
                case .scanned:
                    let who = sanitized(status.scanner?.displayName ?? "a phone")
                    let match = status.match.map(String.init) ?? "?"
                    await console.line("Scanned by \(who) — pick \(match) on your phone")
                case .confirmed:
                    ticker.cancel()
                    guard let token = status.token else { throw CLIError.failed("confirmed, but the server sent no token") }
                    try await finish(profile, token: token)
                    return
                case .denied:
                    let why = status.reason == .wrongMatch ? " (the wrong number was picked)" : ""
                    throw CLIError.failed("denied on the phone\(why)")
                case .cancelled:
                    throw CLIError.failed("the login request was cancelled")
                case .expired:
                    break
                }
            }
            ticker.cancel()
            await console.line("The code expired.")
        }
        throw CLIError.failed("expired: nobody approved the login in time; run `qrlogin login` again")
    }

    private static func show(_ login: PendingLogin) async throws {
        let console = Console.shared
        if let code = try? QRCode.encode(text: login.url, correction: .low),
           let text = try? code.terminalText(quietZone: 2, ansiColors: Console.isTerminal) {
            await console.line(text)
        }
        await console.line("  \(login.url)")
        await console.line()
        await console.line("Scan it with the phone app, or on a signed-in terminal run:")
        await console.line("  qrlogin phone approve \(login.url)")
        let seconds = max(0, Int(login.expiresAt.timeIntervalSinceNow.rounded()))
        await console.line("Waiting for approval; the code expires in \(Self.clock(seconds)).")
    }

    private static func countdown(to deadline: Date) async {
        while !Task.isCancelled {
            let left = max(0, Int(deadline.timeIntervalSinceNow.rounded(.up)))
            await Console.shared.countdown("Expires in \(Self.clock(left))")
            try? await Task.sleep(for: .seconds(1))
        }
        await Console.shared.clearCountdown()
    }

    private static func finish(_ profile: ProfileClient, token: LoginToken) async throws {
        let client = profile.client
        let me = try await client.me()
        let session = StoredSession(
            server: client.server, accessToken: token.accessToken, expiresAt: token.expiresAt, accountId: token.accountId,
            username: me.account.username, displayName: me.account.displayName, deviceId: token.deviceId, deviceType: token.deviceType
        )
        try profile.save(session)
        await Console.shared.line("Logged in as \(sanitized(me.account.displayName)) (\(sanitized(me.account.username))) on \(client.server)")
        await Console.shared.line("This device: \(token.deviceId); credentials saved in \(profile.store.directory.path)")
    }

    static func clock(_ seconds: Int) -> String {
        String(format: "%d:%02d", seconds / 60, seconds % 60)
    }
}

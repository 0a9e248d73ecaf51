import ArgumentParser
import Foundation
import QRLoginClient
import QRLoginCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `qrlogin phone …`: a stand-in for the signed-in mobile app, for demos, tests and scripts.
struct PhoneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phone",
        abstract: "Act as the signed-in phone app: register, sign in, approve or deny a QR login.",
        subcommands: [PhoneRegisterCommand.self, PhoneSignInCommand.self, PhoneApproveCommand.self, PhoneDenyCommand.self]
    )
}

/// `qrlogin phone register`.
struct PhoneRegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "register", abstract: "Create an account (the password is asked for, or read with --password-stdin).")

    @OptionGroup var options: ClientOptions
    @Option(help: "Login name: letters, digits, '.', '_', '-'.") var username: String
    @Option(name: .customLong("display-name"), help: "The name shown on PCs after a scan. (default: the username)") var displayName: String?
    @Option(help: "Phone number in E.164 form, for one-time-code sign-in.") var phone: String?
    @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input.") var passwordStdin = false

    func run() async throws {
        try await runClientCommand {
            let password = try readPassword(fromStdin: passwordStdin)
            try await AsyncHTTPClientTransport.withOwnClient { transport in
                let profile = try ProfileClient.open(options, transport: transport, requireSession: false, hint: "")
                let account = try await profile.client.register(username: username, password: password, displayName: displayName, phone: phone)
                Console.write("Registered \(sanitized(account.username)) (\(sanitized(account.displayName))) on \(profile.client.server).\n")
                Console.write("Sign in with: qrlogin phone signin --username \(sanitized(account.username)) --profile \(options.profileName)\n")
            }
        }
    }
}

/// `qrlogin phone signin`.
struct PhoneSignInCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "signin", abstract: "Sign this profile in as the phone (the password is asked for, or read with --password-stdin).")

    @OptionGroup var options: ClientOptions
    @Option(help: "Login name.") var username: String
    @Flag(name: .customLong("password-stdin"), help: "Read the password from the first line of standard input.") var passwordStdin = false
    @Option(name: .customLong("device-name"), help: "This phone's name, shown in device lists.") var deviceName = "qrlogin phone"
    @Option(name: .customLong("device-type"), help: "ios or android.") var deviceType = "ios"

    func run() async throws {
        try await runClientCommand {
            guard let type = DeviceType(rawValue: deviceType), type == .ios || type == .android else {
                throw CLIError.usage("--device-type must be ios or android")
            }
            let password = try readPassword(fromStdin: passwordStdin)
            try await AsyncHTTPClientTransport.withOwnClient { transport in
                let profile = try ProfileClient.open(options, transport: transport, requireSession: false, hint: "")
                let session: Session
                do {
                    session = try await profile.client.signIn(username: username, password: password, device: DeviceDescription(type: type, name: deviceName))
                } catch let error as QRLoginClientError where error.code == "invalid_credentials" {
                    throw CLIError.failed("wrong username or password (no account yet? run `qrlogin phone register --username \(username)`)")
                }
                try profile.save(StoredSession(
                    server: profile.client.server, accessToken: session.accessToken, expiresAt: session.expiresAt, accountId: session.account.id,
                    username: session.account.username, displayName: session.account.displayName, deviceId: session.device.id, deviceType: session.device.type
                ))
                Console.write("Signed in as \(sanitized(session.account.displayName)) (\(sanitized(session.account.username))) on \(profile.client.server); this phone is device \(session.device.id).\n")
            }
        }
    }
}

/// The scan a phone made and has not answered yet, kept (mode 0600) so that a second
/// `phone approve … --match N` can finish it.
enum SavedScan {
    static let file = "pending-scan.json"

    static func load(_ profile: ProfileClient, id: String) -> ScanResult? {
        guard let data = try? profile.store.loadFile(named: file),
              let scan = try? decoder.decode(ScanResult.self, from: data),
              scan.id == id, scan.ticketExpiresAt > Date()
        else { return nil }
        return scan
    }

    static func save(_ profile: ProfileClient, _ scan: ScanResult) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try profile.store.saveFile(named: file, try encoder.encode(scan))
    }

    static func delete(_ profile: ProfileClient) {
        profile.store.deleteFile(named: file)
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// The profile's saved scan of `urlOrId`, or a new scan.
    static func scan(_ profile: ProfileClient, _ urlOrId: String) async throws -> ScanResult {
        let id = try loginRequestId(fromURLOrId: urlOrId)
        if let saved = load(profile, id: id) { return saved }
        do {
            let scan = try await profile.client.scan(url: id)
            try save(profile, scan)
            return scan
        } catch let error as QRLoginClientError {
            switch error.code {
            case "already_scanned": throw CLIError.failed("this login request was already scanned by another phone")
            case "expired": throw CLIError.failed("this login request has expired: start a new `qrlogin login`")
            case "not_found": throw CLIError.failed("no such login request: \(id)")
            case let code? where code.hasPrefix("request_"): throw CLIError.failed("this login request is already \(code.dropFirst(8))")
            default: throw error
            }
        }
    }
}

/// Signs in the phone profile, mapping a refused token to the fix.
func withPhone(_ options: ClientOptions, _ body: (ProfileClient) async throws -> Void) async throws {
    try await runClientCommand {
        try await AsyncHTTPClientTransport.withOwnClient { transport in
            let profile = try ProfileClient.open(options, transport: transport, requireSession: true, hint: "run `qrlogin phone signin --username NAME --profile \(options.profileName)`")
            do {
                try await body(profile)
            } catch let error as QRLoginClientError where error.code == "invalid_token" {
                throw CLIError.failed("the phone's sign-in no longer works: run `qrlogin phone signin --profile \(options.profileName)` again")
            }
        }
    }
}

/// `qrlogin phone approve`.
struct PhoneApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Scan a login request, show who is asking, and confirm it.",
        discussion: """
        Shows the asking device (type, name, IP, user agent, time) and three numbers, then asks \
        which number the PC shows (unless --match is given) and asks for an explicit yes (unless \
        --yes is given). Anything but yes denies the request. Without a terminal and without \
        --match, the scan is kept and the command tells how to finish it with --match.

        For an app's sign-in (OAuth device grant: --code, or the url its QR code opened): shows \
        the app and its scopes and three codes instead of numbers; no code or no yes denies it.

        Exit codes: 0 approved (or scanned and waiting for --match); 1 denied or refused; \
        69 server unreachable; 64 usage.
        """
    )

    @OptionGroup var options: ClientOptions
    @Argument(help: "The QR code's url, or the bare request id (omit with --code).") var urlOrId: String?
    @Option(help: "The number the PC shows.") var match: Int?
    @Option(help: "For an app's sign-in (OAuth device grant): the code the device shows, e.g. BCDF-GHJK. Without a url it finds the request by this code.") var code: String?
    @Flag(help: "Confirm without asking.") var yes = false

    func validate() throws {
        if urlOrId == nil && code == nil { throw ValidationError("give the QR code's url (or request id), or --code") }
        if match != nil && code != nil { throw ValidationError("--match is for a QR login, --code for an app's sign-in: give one") }
    }

    func run() async throws {
        try await withPhone(options) { profile in
            let scan: ScanResult
            if let urlOrId {
                scan = try await SavedScan.scan(profile, urlOrId)
            } else {
                do {
                    scan = try await profile.client.scan(userCode: code ?? "")
                } catch let error as QRLoginClientError where error.code == "not_found" {
                    throw CLIError.failed("no sign-in is waiting for the code \(sanitized(code ?? "")): check it, or start again on the device")
                }
            }
            let who = profile.saved.map { "\(sanitized($0.displayName ?? $0.username ?? $0.accountId))" } ?? "you"
            if let codes = scan.userCodeChoices {
                return try await approveApp(scan, codes: codes, who: who, profile: profile)
            }
            let requester = scan.requester
            Console.write("""
            Login request for \(who):
              device      \(requester.type.rawValue) "\(sanitized(requester.name))"
              IP          \(sanitized(requester.ip))
              user agent  \(sanitized(requester.userAgent))
              asked at    \(readable(requester.createdAt))
            \(networkWarning(scan))Which number does that device show?  \(scan.matchChoices.map(String.init).joined(separator: "   "))

            """)
            var pick = match
            if pick == nil {
                FileHandle.standardOutput.write(Data("Number: ".utf8))
                guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                    // The id goes after `--`: request ids are base64url and may begin with '-'.
                    Console.write("\nScanned. To approve, run: qrlogin phone approve --match N --profile \(options.profileName) -- \(scan.id)   (N = the number the PC shows)\n")
                    return
                }
                guard let number = Int(line.trimmingCharacters(in: .whitespaces)) else { throw CLIError.usage("not a number: \(line)") }
                pick = number
            }
            guard let pick else { return }
            if !yes {
                try await askOrDeny("Log \"\(sanitized(requester.name))\" in as \(who)?", scan, profile, denied: "not confirmed: the login request was denied")
            }
            do {
                try await profile.client.confirm(scan, match: pick)
            } catch let error as QRLoginClientError {
                SavedScan.delete(profile)
                switch error.code {
                case "wrong_match": throw CLIError.failed("\(pick) is not the number the PC showed: the login request was denied")
                case "ticket_expired", "expired": throw CLIError.failed("too late: the login request or its scan expired; start a new `qrlogin login`")
                case "invalid_ticket": throw CLIError.failed("this scan was already answered")
                default: throw error
                }
            }
            SavedScan.delete(profile)
            Console.write("Approved: \"\(sanitized(requester.name))\" is now logged in as \(who).\n")
        }
    }

    /// The QRLjacking warning, with its line break, when the request came from another network
    /// than this phone's (draft-ietf-oauth-cross-device-security): a code or link a phisher
    /// relays comes from the phisher's network. It warns and does not block: NAT, VPNs and
    /// mobile data make a user's own devices differ too.
    private func networkWarning(_ scan: ScanResult) -> String {
        guard scan.requester.sameNetwork == false else { return "" }
        return "Warning: this request comes from a different network than your phone. If someone sent you this code or link, deny it.\n"
    }

    /// Asks `question` with a yes/no prompt; anything but yes denies the request and fails with
    /// `denied`. Deny is the safe default.
    private func askOrDeny(_ question: String, _ scan: ScanResult, _ profile: ProfileClient, denied: String) async throws {
        FileHandle.standardOutput.write(Data("\(question) [y/N] ".utf8))
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
        guard answer == "y" || answer == "yes" else {
            try await profile.client.deny(scan)
            SavedScan.delete(profile)
            throw CLIError.failed(denied)
        }
    }

    /// An app's sign-in (OAuth device grant): shows the app, what it asks for and the three
    /// codes, then confirms with the code the device shows.
    private func approveApp(_ scan: ScanResult, codes: [String], who: String, profile: ProfileClient) async throws {
        let app = sanitized(scan.client?.name ?? "an app")
        let asks = (scan.scopes ?? []).map { "  - " + sanitized($0.description) }.joined(separator: "\n")
        Console.write("""
        \(app) asks to sign in as \(who), from:
          IP          \(sanitized(scan.requester.ip))
          user agent  \(sanitized(scan.requester.userAgent))
          asked at    \(readable(scan.requester.createdAt))
        \(networkWarning(scan))It asks to:
        \(asks.isEmpty ? "  - sign you in" : asks)
        Which code does the device show?  \(codes.joined(separator: "   "))

        """)
        var pick = code
        if pick == nil {
            FileHandle.standardOutput.write(Data("Code: ".utf8))
            guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                try await profile.client.deny(scan)
                SavedScan.delete(profile)
                throw CLIError.failed("no code given: the sign-in was denied")
            }
            pick = line.trimmingCharacters(in: .whitespaces)
        }
        guard let pick else { return }
        if !yes {
            try await askOrDeny("Let \(app) sign in as \(who)?", scan, profile, denied: "not confirmed: the sign-in was denied")
        }
        do {
            try await profile.client.confirm(scan, userCode: pick)
        } catch let error as QRLoginClientError {
            SavedScan.delete(profile)
            switch error.code {
            case "wrong_match": throw CLIError.failed("\(sanitized(pick)) is not the code the device showed: the sign-in was denied")
            case "ticket_expired", "expired": throw CLIError.failed("too late: the sign-in or its scan expired; start again on the device")
            default: throw error
            }
        }
        SavedScan.delete(profile)
        Console.write("Approved: \(app) is now signed in as \(who).\n")
    }
}

/// `qrlogin phone deny`.
struct PhoneDenyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deny", abstract: "Scan a login request (if not yet) and deny it.")

    @OptionGroup var options: ClientOptions
    @Argument(help: "The QR code's url, or the bare request id.") var urlOrId: String

    func run() async throws {
        try await withPhone(options) { profile in
            let scan = try await SavedScan.scan(profile, urlOrId)
            try await profile.client.deny(scan)
            SavedScan.delete(profile)
            Console.write("Denied the login request from \"\(sanitized(scan.requester.name))\".\n")
        }
    }
}

import ArgumentParser
import Crypto
import Foundation
import QRLoginClient
import QRLoginCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--server` and `--profile`, shared by every client command.
struct ClientOptions: ParsableArguments {
    @Option(help: "The QRLogin server. [env: QRLOGIN_SERVER] (default: the profile's saved server, else http://127.0.0.1:8080)")
    var server: String?

    @Option(help: "The identity to act as; each profile has its own key and login. [env: QRLOGIN_PROFILE] (default: default)")
    var profile: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The profile's name.
    var profileName: String {
        profile ?? environment["QRLOGIN_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
    }

    /// The profile's credential files.
    func store() throws -> FileCredentialStore {
        do {
            return try FileCredentialStore(profile: profileName, environment: environment)
        } catch {
            throw CLIError.usage("\(error)")
        }
    }

    /// The server to talk to: the option, the environment, the saved session's, the default.
    func serverURL(saved: StoredSession?) -> String {
        server ?? environment["QRLOGIN_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? saved?.server ?? "http://127.0.0.1:8080"
    }
}

/// What a client command reports on failure; `run` turns it into a message and an exit code.
enum CLIError: Error {
    /// Something the user must fix; exit 1.
    case failed(String)
    /// Bad usage; exit 64.
    case usage(String)
    /// The server cannot be reached; exit 69.
    case unreachable(String)
}

/// Exit codes of the client commands.
enum Exit {
    static let ok: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 64
    static let unavailable: Int32 = 69
}

/// Unbuffered, ordered output: the countdown and status lines come from different tasks, and
/// scripts read the output line by line as it happens.
actor Console {
    static let shared = Console()

    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    private var countdownShown = false

    /// Prints `text` and a newline, replacing a countdown line if one is showing.
    func line(_ text: String = "") {
        clearCountdown()
        Self.write(text + "\n")
    }

    /// Shows `text` on the countdown line (terminals only).
    func countdown(_ text: String) {
        guard Self.isTerminal else { return }
        Self.write("\r\u{1B}[K" + text)
        countdownShown = true
    }

    /// Removes the countdown line.
    func clearCountdown() {
        if countdownShown {
            Self.write("\r\u{1B}[K")
            countdownShown = false
        }
    }

    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data(("error: " + text + "\n").utf8))
    }
}

/// Runs a client command body: maps every failure to a message on stderr (never a stack trace)
/// and the documented exit code.
func runClientCommand(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        await Console.shared.clearCountdown()
        switch error {
        case .failed(let message):
            Console.error(message)
            throw ExitCode(Exit.failure)
        case .usage(let message):
            Console.error(message)
            throw ExitCode(Exit.usage)
        case .unreachable(let message):
            Console.error(message)
            throw ExitCode(Exit.unavailable)
        }
    } catch let error as QRLoginClientError {
        await Console.shared.clearCountdown()
        switch error {
        case .unreachable:
            Console.error("\(error.description) (is `qrlogin serve` running? pass --server or set QRLOGIN_SERVER)")
            throw ExitCode(Exit.unavailable)
        case .invalidServerURL, .invalidLoginURL:
            Console.error(error.description)
            throw ExitCode(Exit.usage)
        default:
            Console.error(error.description)
            throw ExitCode(Exit.failure)
        }
    } catch let error as FileCredentialStoreError {
        Console.error(error.description)
        throw ExitCode(Exit.failure)
    }
}

/// A client for a profile: its key, its saved session (if any) and the server.
struct ProfileClient: Sendable {
    let store: FileCredentialStore
    let saved: StoredSession?
    let key: P256KeyHolder
    let client: QRLoginClient

    /// Loads the profile. `requireSession` fails with a hint when nobody is logged in.
    static func open(_ options: ClientOptions, transport: any ClientTransport, requireSession: Bool, hint: String) throws -> ProfileClient {
        let store = try options.store()
        let saved = try store.loadSession()
        if requireSession, saved == nil {
            throw CLIError.failed("not logged in on profile \"\(options.profileName)\": \(hint)")
        }
        let existing = try store.loadKey()
        let holder = P256KeyHolder(existing: existing)
        let client = try QRLoginClient(
            server: options.serverURL(saved: saved), key: holder.key, accessToken: saved?.accessToken,
            transport: transport, userAgent: userAgent
        )
        return ProfileClient(store: store, saved: saved, key: holder, client: client)
    }

    /// Saves the key (if new) and the session, both mode 0600.
    func save(_ session: StoredSession) throws {
        if key.isNew { try store.saveKey(key.key) }
        try store.saveSession(session)
    }
}

/// A profile's key, and whether it still has to be saved.
struct P256KeyHolder: Sendable {
    let key: P256.Signing.PrivateKey
    let isNew: Bool

    init(existing: P256.Signing.PrivateKey?) {
        key = existing ?? P256.Signing.PrivateKey()
        isNew = existing == nil
    }
}

/// `User-Agent` of the command-line client; the phone shows it when asked to confirm.
let userAgent: String = {
    #if os(Linux)
    let system = "Linux"
    #elseif os(macOS)
    let system = "macOS"
    #else
    let system = "unknown"
    #endif
    return "qrlogin-cli/1 (\(system); \(ProcessInfo.processInfo.hostName))"
}()

/// The explanation for a refused token.
func tokenRefusedHint(_ options: ClientOptions) -> String {
    "the saved login of profile \"\(options.profileName)\" no longer works (logged out, revoked or expired): run `qrlogin login --profile \(options.profileName)` again"
}

/// Reads a password: from one line of stdin with `--password-stdin`, else from the terminal
/// with echo off. Never from argv.
func readPassword(fromStdin: Bool, prompt: String = "Password: ") throws -> String {
    if fromStdin {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError.usage("--password-stdin: no password on standard input") }
        return line
    }
    guard isatty(STDIN_FILENO) == 1 else {
        throw CLIError.usage("no terminal to ask for the password: pipe it in with --password-stdin")
    }
    FileHandle.standardError.write(Data(prompt.utf8))
    var original = termios()
    tcgetattr(STDIN_FILENO, &original)
    var silent = original
    silent.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
    defer {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &original)
        FileHandle.standardError.write(Data("\n".utf8))
    }
    guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw CLIError.usage("no password given") }
    return line
}

/// Prints `value` as pretty JSON with ISO 8601 dates.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    Console.write(String(decoding: try encoder.encode(value), as: UTF8.self) + "\n")
}

/// Lays out rows (under an optional header) as aligned columns.
func table(_ header: [String]?, _ rows: [[String]]) -> String {
    let all = (header.map { [$0] } ?? []) + rows
    guard let columns = all.first?.count else { return "" }
    let widths = (0..<columns).map { column in all.map { $0[column].count }.max() ?? 0 }
    return all.map { row in
        row.indices.map { $0 == row.count - 1 ? row[$0] : row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}

/// Client-supplied text made safe for a terminal: control characters become `?`.
func sanitized(_ text: String) -> String {
    String(text.unicodeScalars.map { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format ? "?" : Character($0) })
}

/// A date for people, in the local time zone.
func readable(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss zzz"
    return formatter.string(from: date)
}

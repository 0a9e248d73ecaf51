import ArgumentParser
import Foundation
import QRLoginCore
import QRLoginOAuth
import QRLoginServer
import QRLoginSQLite

/// `qrlogin keys …`: the keys that sign ID tokens, in the configured database.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List and rotate the keys that sign ID tokens.",
        subcommands: [KeysListCommand.self, KeysRotateCommand.self]
    )
}

/// One key as `keys list --json` prints it (never the private key).
private struct KeyView: Encodable {
    var kid: String
    var algorithm: SigningAlgorithm
    var createdAt: Date
    var retiredAt: Date?
    var signing: Bool
}

struct KeysListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the signing keys: the one that signs for each algorithm, and the retired ones still published.")

    @OptionGroup var options: ClientStoreOptions

    func run() async throws {
        try await runClientCommand {
            let keys = try await options.withStore { try await $0.signingKeys() }
            let views = keys.map { KeyView(kid: $0.kid, algorithm: $0.algorithm, createdAt: $0.createdAt, retiredAt: $0.retiredAt, signing: $0.retiredAt == nil) }
            if options.json { return try printJSON(["keys": views]) }
            guard !views.isEmpty else { return Console.write("no keys yet: `qrlogin serve` makes them on its first start\n") }
            Console.write(table(["KID", "ALG", "CREATED", "STATE"], views.map { key in
                [key.kid, key.algorithm.rawValue, readable(key.createdAt), key.retiredAt.map { "retired \(readable($0))" } ?? "signing"]
            }))
        }
    }
}

struct KeysRotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Add a new signing key; it signs from now on (running servers take it within 30 s).",
        discussion: "The key it replaces signs nothing more but stays in the JWKS until every ID token it signed has expired, so relying parties can still check them."
    )

    @OptionGroup var options: ClientStoreOptions
    @Option(help: "ES256, RS256, or all.") var algorithm: String = "all"

    func run() async throws {
        try await runClientCommand {
            let algorithms: [SigningAlgorithm]
            if algorithm.lowercased() == "all" {
                algorithms = SigningAlgorithm.allCases
            } else if let one = SigningAlgorithm(rawValue: algorithm.uppercased()) {
                algorithms = [one]
            } else {
                throw CLIError.usage("--algorithm must be ES256, RS256 or all")
            }
            let added = try await options.withStore { store in
                var added: [SigningKey] = []
                for algorithm in algorithms {
                    let key = try KeyMaker.generate(algorithm, at: Date())
                    try await store.addSigningKey(key)
                    added.append(key)
                }
                return added
            }
            if options.json { return try printJSON(["added": added.map { KeyView(kid: $0.kid, algorithm: $0.algorithm, createdAt: $0.createdAt, retiredAt: nil, signing: true) }]) }
            for key in added { Console.write("added \(key.algorithm.rawValue) key \(key.kid); it signs from now on\n") }
        }
    }
}

import ArgumentParser
import Foundation
import Logging
import QRLoginCore
import QRLoginOAuth
import QRLoginPostgres
import QRLoginSQLite

/// `qrlogin clients …`: manages OAuth clients directly in the configured database, like
/// `serve` opens it (`--database`, `QRLOGIN_DATABASE`), so it works with the server stopped or
/// running (SQLite's locking keeps the two apart).
struct ClientsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clients",
        abstract: "Register and manage the OAuth clients (apps) that sign users in with QRLogin.",
        subcommands: [ClientsAddCommand.self, ClientsListCommand.self, ClientsShowCommand.self, ClientsRemoveCommand.self, ClientsRotateSecretCommand.self]
    )
}

/// Where the clients are: the database `serve` uses.
struct ClientStoreOptions: ParsableArguments {
    @Option(help: "SQLite database file, or the postgres:// URL serve uses. [env: QRLOGIN_DATABASE] (default: qrlogin.sqlite)")
    var database: String?

    @Flag(help: "Print JSON.") var json = false

    var path: String {
        database ?? ProcessInfo.processInfo.environment["QRLOGIN_DATABASE"].flatMap { $0.isEmpty ? nil : $0 } ?? "qrlogin.sqlite"
    }

    /// Runs `body` with the store open, closing it after.
    func withStore<T>(_ body: (any Store) async throws -> T) async throws -> T {
        var logger = Logger(label: "qrlogin.clients")
        logger.logLevel = .warning
        if PostgresURL.isPostgres(path) {
            let store: PostgresStore
            do {
                store = try await PostgresStore.open(url: path, maximumConnections: 2, logger: logger)
            } catch {
                // The URL may hold a password: it is named without it.
                let named = (try? PostgresURL(path))?.description ?? "postgres://…"
                throw CLIError.failed("cannot open the database \(named): \(error)")
            }
            do {
                let result = try await body(store)
                await store.close()
                return result
            } catch {
                await store.close()
                throw error
            }
        }
        let store: SQLiteStore
        do {
            store = try await SQLiteStore.open(path: path, logger: logger)
        } catch {
            throw CLIError.failed("cannot open the database \(path): \(error)")
        }
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Prints `client` (and a new secret, once) as JSON or as a table.
    func print(_ client: OAuthClient, secret: String?) throws {
        if json {
            var document = ClientDocument(client)
            document.secret = secret
            return try printJSON(document)
        }
        var rows = [
            ["id", client.id],
            ["name", client.name],
            ["type", client.type.rawValue],
            ["grant types", client.grantTypes.isEmpty ? "none (introspection only)" : client.grantTypes.map(\.shortName).joined(separator: " ")],
            ["scopes", client.allowedScopes.joined(separator: " ")],
            ["redirect URIs", client.redirectURIs.joined(separator: " ")],
            ["after sign-out", client.postLogoutRedirectURIs.joined(separator: " ")],
            ["ID tokens", client.idTokenAlgorithm.rawValue],
            ["DPoP required", client.requireDPoP ? "yes" : "no"],
            ["created", readable(client.createdAt)],
        ]
        if let secret { rows.append(["secret", secret + "   (shown once: store it now)"]) }
        Console.write(table(nil, rows))
    }
}

/// Finds client `id` or fails with a message.
private func requireClient(_ id: String, in store: any Store) async throws -> OAuthClient {
    guard let client = try await store.client(id: id) else { throw CLIError.failed("no client with id '\(id)' (see `qrlogin clients list`)") }
    return client
}

struct ClientsAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Register a client; a confidential client's secret is printed once.")

    @OptionGroup var options: ClientStoreOptions
    @Option(help: "Client id: letters, digits, '.', '_', '-' (default: a random id).") var id: String?
    @Option(help: "The name the phone shows when the client asks for a login.") var name: String
    @Option(help: "public (a CLI, a native or browser app) or confidential (a server that keeps a secret).") var type: ClientType = .public
    @Option(name: .customLong("redirect-uri"), help: "A redirect URI (exact match); repeatable.") var redirectURIs: [String] = []
    @Option(name: .customLong("grant-type"), help: "device_code, refresh_token, authorization_code, or none (a backend that only introspects); repeatable. (default: device_code and refresh_token)") var grantTypes: [String] = []
    @Option(name: .customLong("scope"), help: "A scope this client may ask for beyond openid, profile, phone and offline_access; repeatable.") var scopes: [String] = []
    @Option(name: .customLong("post-logout-redirect-uri"), help: "Where sign-out may return the browser to (exact match); repeatable.") var postLogoutRedirectURIs: [String] = []
    @Option(name: .customLong("id-token-alg"), help: "ES256 or RS256: how this client's ID tokens are signed.") var idTokenAlg: String = "ES256"
    @Flag(name: .customLong("require-dpop"), help: "Issue only DPoP-bound tokens to this client (dpop_bound_access_tokens).") var requireDPoP = false
    @Flag(name: .customLong("require-par"), help: "Accept only pushed authorization requests from this client (RFC 9126).") var requirePAR = false

    func run() async throws {
        try await runClientCommand {
            let secret = type == .confidential ? ClientSecret.generate() : nil
            let document = ClientDocument(
                id: id ?? Secrets.publicId().replacingOccurrences(of: "_", with: "-"), name: name, type: type, secret: secret,
                redirectURIs: redirectURIs, grantTypes: grantTypes.isEmpty ? ["device_code", "refresh_token"] : grantTypes.filter { $0 != "none" },
                scopes: scopes, dpopBoundAccessTokens: requireDPoP, idTokenSignedResponseAlg: SigningAlgorithm(rawValue: idTokenAlg.uppercased()),
                postLogoutRedirectURIs: postLogoutRedirectURIs, requirePushedAuthorizationRequests: requirePAR
            )
            guard SigningAlgorithm(rawValue: idTokenAlg.uppercased()) != nil else { throw CLIError.usage("--id-token-alg must be ES256 or RS256") }
            let client: OAuthClient
            do throws(OAuthError) {
                client = try document.client(createdAt: Date())
            } catch {
                throw CLIError.usage(error.description)
            }
            try await options.withStore { store in
                if try await store.client(id: client.id) != nil { throw CLIError.failed("a client with id '\(client.id)' exists already") }
                try await store.upsertClient(client)
            }
            try options.print(client, secret: secret)
        }
    }
}

struct ClientsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the registered clients.")

    @OptionGroup var options: ClientStoreOptions

    func run() async throws {
        try await runClientCommand {
            let clients = try await options.withStore { try await $0.clients() }
            if options.json { return try printJSON(ClientFileDocument(clients: clients.map(ClientDocument.init))) }
            guard !clients.isEmpty else { return Console.write("no clients (add one with `qrlogin clients add --name NAME`)\n") }
            Console.write(table(["ID", "NAME", "TYPE", "GRANTS", "DPOP"], clients.map { client in
                [client.id, sanitized(client.name), client.type.rawValue, client.grantTypes.map(\.shortName).joined(separator: ","), client.requireDPoP ? "required" : "optional"]
            }))
        }
    }
}

struct ClientsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one client.")

    @OptionGroup var options: ClientStoreOptions
    @Argument(help: "The client id.") var id: String

    func run() async throws {
        try await runClientCommand {
            let client = try await options.withStore { try await requireClient(id, in: $0) }
            try options.print(client, secret: nil)
        }
    }
}

struct ClientsRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a client; every token it holds stops working at once.")

    @OptionGroup var options: ClientStoreOptions
    @Argument(help: "The client id.") var id: String

    func run() async throws {
        try await runClientCommand {
            let removed = try await options.withStore { try await $0.removeClient(id: id, at: Date()) }
            guard removed else { throw CLIError.failed("no client with id '\(id)' (see `qrlogin clients list`)") }
            if options.json { return try printJSON(["removed": id]) }
            Console.write("removed client \(id); its tokens are revoked\n")
        }
    }
}

struct ClientsRotateSecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rotate-secret", abstract: "Give a confidential client a new secret (printed once); the old one stops working.")

    @OptionGroup var options: ClientStoreOptions
    @Argument(help: "The client id.") var id: String

    func run() async throws {
        try await runClientCommand {
            let secret = ClientSecret.generate()
            let client = try await options.withStore { store in
                var client = try await requireClient(id, in: store)
                guard client.type == .confidential else { throw CLIError.failed("client '\(id)' is public: it has no secret") }
                client.secretHash = ClientSecret.hash(secret)
                try await store.upsertClient(client)
                return client
            }
            try options.print(client, secret: secret)
        }
    }
}

extension ClientType: ExpressibleByArgument {}

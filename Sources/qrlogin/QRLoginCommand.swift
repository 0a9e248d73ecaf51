import ArgumentParser

/// The `qrlogin` command: the server, the terminal clients (PC and phone stand-in) and the QR
/// encoder. The load generator is `qrlogin-bench`, a separate executable.
@main
struct QRLoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qrlogin",
        abstract: "Scan-to-log-in: server, QR encoder and clients.",
        subcommands: [
            ServeCommand.self, LoginCommand.self, WhoamiCommand.self, DevicesCommand.self, RevokeCommand.self, LogoutCommand.self,
            PhoneCommand.self, QRCommand.self, ClientsCommand.self, KeysCommand.self,
        ]
    )
}

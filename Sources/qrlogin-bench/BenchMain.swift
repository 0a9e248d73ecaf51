import ArgumentParser

/// `qrlogin-bench`: the load generator, apart from the shipped `qrlogin` binary so that users of
/// the CLI do not carry it. It starts `qrlogin serve` from the same build folder (or a cluster of
/// them, see `--cluster`).
@main
struct BenchMain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qrlogin-bench",
        abstract: "Load-test a QRLogin server with the real protocol (build with -c release). See BENCHMARKS.md.",
        subcommands: [BenchCommand.self, PlainStreamServerCommand.self],
        defaultSubcommand: BenchCommand.self
    )
}

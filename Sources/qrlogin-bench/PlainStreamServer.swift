import ArgumentParser
import NIOCore
import NIOHTTP1
import NIOPosix

/// `qrlogin-bench plain-stream-server` (hidden): the memory floor of a waiting PC
/// without Hummingbird. A bare NIO HTTP/1 server whose every request (but `/health`) is answered
/// with an event-stream head and one event, after which the connection is only held, as a
/// waiting PC's is: the request decoder is taken out of the pipeline and reads use a small
/// buffer. No task, no async channel, no route: what such a stream would cost if QRLogin served
/// waiting PCs from a plain channel handler (BENCHMARKS.md, "What it would take").
struct PlainStreamServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plain-stream-server",
        abstract: "Memory floor for qrlogin-bench: a bare NIO event-stream server.",
        shouldDisplay: false
    )

    @Option(help: "Loopback port to listen on.")
    var port: Int

    func run() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65_536))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(PlainStreamHandler())
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        try await channel.closeFuture.get()
    }
}

private final class PlainStreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var streaming = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data), !streaming else { return }
        if head.uri == "/health" {
            let body = context.channel.allocator.buffer(string: "ok")
            let headers: HTTPHeaders = ["content-type": "text/plain", "content-length": "\(body.readableBytes)"]
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        streaming = true
        let headers: HTTPHeaders = ["content-type": "text/event-stream", "cache-control": "no-store"]
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        let event = context.channel.allocator.buffer(string: "event: pending\ndata: {\"state\":\"pending\"}\n\n")
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(event))), promise: nil)
        // Nothing more is read on a stream: drop the request decoder.
        if let decoder = try? context.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            context.pipeline.syncOperations.removeHandler(context: decoder, promise: nil)
        }
    }
}

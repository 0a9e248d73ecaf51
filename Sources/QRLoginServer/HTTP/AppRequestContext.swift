import Foundation
import Hummingbird
import NIOCore
import QRLoginCore

/// The context of every request: the peer address (for client IP resolution) and, after
/// ``DeviceAuthMiddleware``, the verified identity.
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer.
    public let remoteAddress: SocketAddress?
    /// Set by ``DeviceAuthMiddleware`` once token and proof are verified.
    public var identity: Identity?

    /// Creates the context for a new request.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Request bodies are small JSON documents; anything larger is refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
    /// ISO 8601 dates and sorted keys, so responses are stable and easy to diff.
    public var responseEncoder: JSONEncoder { .qrlogin }
}

/// The context of routes that need a signed-in device. It cannot be created without a
/// verified identity, so a handler that takes it can rely on one.
public struct AuthenticatedContext: ChildRequestContext {
    /// Hummingbird's own per-request storage.
    public var coreContext: CoreRequestContextStorage
    /// The verified caller.
    public let identity: Identity
    /// The client facts of the parent context.
    public let remoteAddress: SocketAddress?

    /// Takes the identity from the parent context.
    /// - Throws: ``QRLoginError/missingCredentials`` when no identity was verified.
    public init(context: AppRequestContext) throws {
        guard let identity = context.identity else { throw QRLoginError.missingCredentials }
        self.coreContext = context.coreContext
        self.identity = identity
        self.remoteAddress = context.remoteAddress
    }

    /// Request bodies are small JSON documents; anything larger is refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
    /// ISO 8601 dates and sorted keys, so responses are stable and easy to diff.
    public var responseEncoder: JSONEncoder { .qrlogin }
}

extension JSONEncoder {
    /// The encoder of every JSON body the server writes.
    static var qrlogin: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}

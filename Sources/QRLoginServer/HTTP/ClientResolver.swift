import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Works out the client's IP and User-Agent. `X-Forwarded-For` is believed only when the TCP
/// peer is one of the configured trusted proxies; the client is then the right-most address
/// that is not itself a trusted proxy.
public struct ClientResolver: Sendable {
    let trustedProxies: Set<String>

    /// Creates a resolver trusting exactly `trustedProxies` (IP addresses).
    public init(trustedProxies: [String]) {
        self.trustedProxies = Set(trustedProxies)
    }

    /// The client facts of `request` arriving from `peer`.
    public func client(of request: Request, peer: SocketAddress?) -> ClientInfo {
        let peerIP = peer?.ipAddress ?? "unknown"
        var ip = peerIP
        if trustedProxies.contains(peerIP), let forwarded = request.headers[values: .xForwardedFor].last {
            let hops = forwarded.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let client = hops.last(where: { !trustedProxies.contains($0) }) ?? hops.first {
                ip = String(client.prefix(64))
            }
        }
        let userAgent = String((request.headers[.userAgent] ?? "").prefix(512))
        return ClientInfo(ip: ip, userAgent: userAgent)
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let dpop = Self("DPoP")!
}

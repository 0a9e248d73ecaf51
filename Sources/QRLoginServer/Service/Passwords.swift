import HummingbirdBcrypt
import NIOPosix

/// bcrypt hashing on NIO's blocking thread pool, so a slow hash never holds up the event loop
/// or the cooperative thread pool.
struct PasswordHasher: Sendable {
    var cost: UInt8
    var threadPool: NIOThreadPool = .singleton

    /// A hash of a fixed string: verified against when the username is unknown, so an unknown
    /// user costs the same time as a wrong password.
    let dummyHash: String

    init(cost: UInt8) {
        self.cost = cost
        self.dummyHash = Bcrypt.hash("qrlogin-timing-equaliser", cost: cost)
    }

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await threadPool.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}

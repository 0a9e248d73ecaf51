import Logging

/// Delivers one-time sign-in codes (SMS gateway, push, e-mail…). Plug in your own.
public protocol OneTimeCodeSender: Sendable {
    /// Sends `code` to `phone`. Throwing makes the start call fail with a server error.
    func send(code: String, to phone: String) async throws
}

/// The development sender: writes the code to the log at `notice` level. Do not use it where
/// the log is read by anyone but the phone's owner.
public struct LogCodeSender: OneTimeCodeSender {
    let logger: Logger

    /// Creates a sender that writes to `logger`.
    public init(logger: Logger) {
        self.logger = logger
    }

    public func send(code: String, to phone: String) async throws {
        logger.notice("one-time sign-in code (development sender)", metadata: ["qrlogin.phone": "\(phone)", "qrlogin.code": "\(code)"])
    }
}

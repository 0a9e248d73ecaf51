/// What `qrlogin serve` was told on its command line. Nil (or an empty list) means the option
/// was not given, so the environment variable or the default applies.
public struct ServeOptions: Sendable, Equatable {
    /// `--host`.
    public var host: String?
    /// `--port`.
    public var port: Int?
    /// `--database`.
    public var database: String?
    /// `--public-url`.
    public var publicURL: String?
    /// `--rate-limits on|off`.
    public var rateLimits: Bool?
    /// `--trusted-proxy`, repeated.
    public var trustedProxies: [String]
    /// `--request-ttl`, seconds.
    public var requestTTL: Int?
    /// `--ticket-ttl`, seconds.
    public var ticketTTL: Int?
    /// `--token-ttl`, seconds.
    public var tokenTTL: Int?
    /// `--proof-skew`, seconds.
    public var proofSkew: Int?
    /// `--bcrypt-cost`.
    public var bcryptCost: Int?
    /// `--log-level`.
    public var logLevel: String?
    /// `--log-format`: text or json.
    public var logFormat: String?
    /// `--metrics-port`.
    public var metricsPort: Int?
    /// `--metrics-host`.
    public var metricsHost: String?
    /// `--retention`, seconds.
    public var retention: Int?
    /// `--cleanup-interval`, seconds.
    public var cleanupInterval: Int?
    /// `--idle-timeout`, seconds.
    public var idleTimeout: Int?
    /// `--database-timeout`, seconds.
    public var databaseTimeout: Int?
    /// `--dpop-nonces on|off`.
    public var dpopNonces: Bool?
    /// `--device-interval`, seconds.
    public var deviceInterval: Int?
    /// `--device-code-ttl`, seconds.
    public var deviceCodeTTL: Int?
    /// `--oauth-token-ttl`, seconds.
    public var oauthTokenTTL: Int?
    /// `--client-file`.
    public var clientFile: String?

    /// Options as given; everything not given by default.
    public init(
        host: String? = nil, port: Int? = nil, database: String? = nil, publicURL: String? = nil,
        rateLimits: Bool? = nil, trustedProxies: [String] = [], requestTTL: Int? = nil, ticketTTL: Int? = nil,
        tokenTTL: Int? = nil, proofSkew: Int? = nil, bcryptCost: Int? = nil, logLevel: String? = nil, idleTimeout: Int? = nil, databaseTimeout: Int? = nil,
        dpopNonces: Bool? = nil, deviceInterval: Int? = nil, deviceCodeTTL: Int? = nil, oauthTokenTTL: Int? = nil, clientFile: String? = nil,
        logFormat: String? = nil, metricsPort: Int? = nil, metricsHost: String? = nil, retention: Int? = nil, cleanupInterval: Int? = nil
    ) {
        self.retention = retention
        self.cleanupInterval = cleanupInterval
        self.logFormat = logFormat
        self.metricsPort = metricsPort
        self.metricsHost = metricsHost
        self.dpopNonces = dpopNonces
        self.deviceInterval = deviceInterval
        self.deviceCodeTTL = deviceCodeTTL
        self.oauthTokenTTL = oauthTokenTTL
        self.clientFile = clientFile
        self.host = host
        self.port = port
        self.database = database
        self.publicURL = publicURL
        self.rateLimits = rateLimits
        self.trustedProxies = trustedProxies
        self.requestTTL = requestTTL
        self.ticketTTL = ticketTTL
        self.tokenTTL = tokenTTL
        self.proofSkew = proofSkew
        self.bcryptCost = bcryptCost
        self.logLevel = logLevel
        self.idleTimeout = idleTimeout
        self.databaseTimeout = databaseTimeout
    }
}

/// A setting of `qrlogin serve` that cannot be used. The message names the option or the
/// environment variable it came from, the value, and what would be accepted.
public struct ServerConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The environment variable of the setting (also for a value given as an option).
    public var variable: String
    /// What is wrong, for people.
    public var message: String

    /// Creates an error about `variable`.
    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

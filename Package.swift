// swift-tools-version:6.2
import PackageDescription

/// One set of settings for every target: Swift 6 mode (strict concurrency) plus the
/// upcoming features Hummingbird itself builds with.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "qrlogin",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .executable(name: "qrlogin", targets: ["qrlogin"]),
        .executable(name: "qrlogin-bench", targets: ["qrlogin-bench"]),
        .library(name: "QRCode", targets: ["QRCode"]),
        .library(name: "QRCodeRender", targets: ["QRCodeRender"]),
        .library(name: "QRLoginCore", targets: ["QRLoginCore"]),
        .library(name: "QRLoginOAuth", targets: ["QRLoginOAuth"]),
        .library(name: "QRLoginServer", targets: ["QRLoginServer"]),
        .library(name: "QRLoginClient", targets: ["QRLoginClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Signs ID tokens (ES256, RS256); 5.8.0 for base64url EC parameters (see Keyring).
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        // PostgreSQL for many instances; 1.32.2 and later fix LISTEN after errors.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Metrics (GET /metrics): the swift-metrics API, Prometheus's text format.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // QR encoder: no dependencies.
        .target(name: "QRCode", swiftSettings: swiftSettings),
        .target(name: "QRCodeRender", dependencies: ["QRCode"], swiftSettings: swiftSettings),

        // Login service.
        // OAuth 2.0 domain (clients, grants, token families): value types and rules, no HTTP.
        .target(name: "QRLoginOAuth", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        .target(
            name: "QRLoginCore",
            dependencies: [
                "QRLoginOAuth",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QRLoginSQLite",
            dependencies: [
                "QRLoginCore",
                // SQLiteNIO is the source of the SQLite library (its VaporCSQLite module),
                // which the store calls directly; see SQLiteStore.
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QRLoginPostgres",
            dependencies: [
                "QRLoginCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QRLoginServer",
            dependencies: [
                "QRCode",
                "QRCodeRender",
                "QRLoginCore",
                "QRLoginOAuth",
                "QRLoginSQLite",
                "QRLoginPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "QRLoginClient",
            dependencies: [
                "QRLoginCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "qrlogin",
            dependencies: [
                "QRCode",
                "QRCodeRender",
                "QRLoginServer",
                "QRLoginOAuth",
                "QRLoginSQLite",
                "QRLoginPostgres",
                "QRLoginClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The load generator, apart from the shipped CLI.
        .executableTarget(
            name: "qrlogin-bench",
            dependencies: [
                "QRLoginCore",
                "QRLoginOAuth",
                "QRLoginSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "QRCodeTests", dependencies: ["QRCode"], swiftSettings: swiftSettings),
        .testTarget(name: "QRCodeRenderTests", dependencies: ["QRCode", "QRCodeRender"], swiftSettings: swiftSettings),
        .testTarget(name: "QRLoginOAuthTests", dependencies: ["QRLoginOAuth"], swiftSettings: swiftSettings),
        .testTarget(name: "QRLoginCoreTests", dependencies: ["QRLoginCore"], swiftSettings: swiftSettings),
        // What the test targets share: the test PostgreSQL database, servers on free ports.
        .target(
            name: "QRLoginTestSupport",
            dependencies: [
                "QRLoginPostgres",
                "QRLoginSQLite",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/QRLoginTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QRLoginSQLiteTests", dependencies: ["QRLoginCore", "QRLoginOAuth", "QRLoginSQLite", "QRLoginPostgres", "QRLoginTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QRLoginServerTests",
            dependencies: [
                "QRLoginServer",
                "QRLoginTestSupport",
                "QRLoginOAuth",
                "QRLoginPostgres",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "QRLoginClientTests",
            dependencies: [
                "QRLoginClient",
                "QRLoginTestSupport",
                "QRCode",
                "QRLoginServer",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// swift-tools-version:6.2
import PackageDescription

// Kept out of the main package so that `swift build` there never needs libqrencode.
// `qr-benchmark` compares our encoder with libqrencode (Debian: libqrencode-dev);
// `qr-crosscheck-helper` prints many symbols in one run for scripts/qr-crosscheck.
let package = Package(
    name: "QRBenchmarks",
    dependencies: [
        .package(name: "qrlogin", path: ".."),
    ],
    targets: [
        .systemLibrary(
            name: "CQREncode",
            pkgConfig: "libqrencode",
            providers: [.apt(["libqrencode-dev"])]
        ),
        .executableTarget(
            name: "qr-benchmark",
            dependencies: [
                "CQREncode",
                .product(name: "QRCode", package: "qrlogin"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "qr-crosscheck-helper",
            dependencies: [
                .product(name: "QRCode", package: "qrlogin"),
                .product(name: "QRCodeRender", package: "qrlogin"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)

// swift-tools-version:6.2
import PackageDescription

/// C kernels are always built optimised (SwiftPM compiles C at -O0 in debug, which would make tests crawl) and
/// warning-free.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno", "-Wall", "-Wextra", "-Werror"])]

/// Our Swift targets treat every warning as an error; dependencies keep their own settings.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "onebit",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "onebit", targets: ["onebit"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        // No traits: the default ones pull full Foundation and ICU into the binary.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        // Named only because the MCP SDK's Transport protocol requires a swift-log Logger.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Already under Hummingbird; named for its graceful-shutdown handler, which ends open MCP streams.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: kernelFlags),
        .target(
            name: "CCUDA", cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])],
            linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "CDemoModel", cSettings: [.unsafeFlags(["-Wall", "-Werror"])]),
        .target(
            name: "OnebitModel",
            dependencies: ["CDemoModel", .product(name: "OrderedCollections", package: "swift-collections")],
            swiftSettings: strict
        ),
        .target(name: "OnebitCPU", dependencies: ["CKernels", "OnebitModel"], swiftSettings: strict),
        .target(name: "OnebitCUDA", dependencies: ["CCUDA", "OnebitModel"], swiftSettings: strict),
        .target(
            name: "OnebitEngine", dependencies: ["OnebitModel", "OnebitCPU", "OnebitCUDA"], swiftSettings: strict),
        .target(
            name: "OnebitMCP",
            dependencies: [
                "OnebitEngine", "OnebitModel", .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "OnebitSpecialists",
            dependencies: ["OnebitEngine", "OnebitModel", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: strict
        ),
        .target(
            name: "OnebitServer",
            dependencies: [
                "OnebitEngine", "OnebitMCP", "OnebitSpecialists", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "onebit",
            dependencies: [
                "OnebitEngine",
                "OnebitCUDA",
                "OnebitServer",
                "OnebitMCP",
                .product(name: "MCP", package: "swift-sdk"),
                "OnebitSpecialists",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "OnebitModelTests", dependencies: ["OnebitModel"], swiftSettings: strict),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "OnebitCPU"], swiftSettings: strict),
        .testTarget(name: "OnebitCUDATests", dependencies: ["OnebitCUDA", "CCUDA"], swiftSettings: strict),
        .testTarget(name: "OnebitEngineTests", dependencies: ["OnebitEngine"], swiftSettings: strict),
        .testTarget(
            name: "OnebitMCPTests",
            dependencies: ["OnebitMCP", "OnebitEngine", "OnebitModel", .product(name: "MCP", package: "swift-sdk")],
            swiftSettings: strict),
        .testTarget(
            name: "OnebitSpecialistsTests",
            dependencies: [
                "OnebitSpecialists", "OnebitEngine", "OnebitServer",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "OnebitServerTests",
            dependencies: [
                "OnebitServer", "OnebitMCP", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
    ]
)

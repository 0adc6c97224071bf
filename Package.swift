// swift-tools-version:6.2
import PackageDescription

/// C kernels are always built optimised: SwiftPM compiles C at -O0 in debug, which would make tests crawl.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-fno-math-errno"])]

let package = Package(
    name: "onebit",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "onebit", targets: ["onebit"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: kernelFlags),
        .target(
            name: "OnebitModel",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")]
        ),
        .target(name: "OnebitCPU", dependencies: ["CKernels", "OnebitModel"]),
        .target(name: "OnebitEngine", dependencies: ["OnebitModel", "OnebitCPU"]),
        .executableTarget(
            name: "onebit",
            dependencies: [
                "OnebitEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "OnebitModelTests", dependencies: ["OnebitModel"], resources: []),
        .testTarget(name: "CKernelsTests", dependencies: ["CKernels", "OnebitCPU"]),
        .testTarget(name: "OnebitEngineTests", dependencies: ["OnebitEngine"]),
    ]
)

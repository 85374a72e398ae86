// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: Tensor ← NN ← Training ← Session ← ollie, with Datasets under
// Training and Tracking beside it, ONNX (import and export) on NN; Files (writing and reading whole files) under NN and Session. The numeric targets are always optimized: their loops run
// ~50× slower at -Onone, which would make even the small training tests crawl. NN, where what
// a user types becomes shapes, keeps its checks (-O): a shape that slipped past `build` stops
// on a precondition instead of corrupting memory. Tensor, Datasets and Training (and the
// benchmark) run -Ounchecked: their loops are over buffers they size themselves, and their
// checks cost about 5 % of the reference epoch (BENCHMARKS.md, alternating A/B); NN's cost
// nothing measurable.
// On x86-64 they target Haswell (AVX2 + FMA, every x86 server since 2013): 2× on the vector loops.
// Every target of ours builds warning-free (-warnings-as-errors): a warning such as an
// Optional interpolated into a path is a bug waiting for a user.
let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]
#if arch(x86_64)
let optimized: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "haswell", "-warnings-as-errors"])]
let unchecked: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell", "-warnings-as-errors"])]
#else
let optimized: [SwiftSetting] = [.unsafeFlags(["-O", "-warnings-as-errors"])]
let unchecked: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-warnings-as-errors"])]
#endif

let package = Package(
    name: "ollie",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ollie", targets: ["ollie"]),
        .executable(name: "ollie-bench", targets: ["ollie-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System-library shims (module maps only), the BLAS loader and the C kernels.
        .target(name: "CBLAS", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])], linkerSettings: [.linkedLibrary("dl")]),
        // Open MPI, dlopened only under mpirun: nothing of it is needed to build or to run alone.
        .target(name: "CMPI", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CReadline", providers: [.apt(["libreadline-dev"])]),
        .systemLibrary(name: "CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"])]),
        // libjpeg reports errors by calling exit() unless error_exit longjmps, which Swift cannot do.
        .target(name: "CImageDecode", dependencies: ["CJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),
        // Clips decoded in process with FFmpeg's libraries (libavformat-dev, libavcodec-dev, libswscale-dev, libavutil-dev).
        .target(name: "CVideoDecode", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [
            .linkedLibrary("avformat"), .linkedLibrary("avcodec"), .linkedLibrary("swscale"), .linkedLibrary("avutil"),
        ]),

        .target(name: "Tensor", dependencies: ["CBLAS"], swiftSettings: unchecked),
        // The one file writer and reader (safe paths, devices refused, write-then-rename).
        .target(name: "Files", swiftSettings: strict),
        .target(name: "NN", dependencies: ["Tensor", "CBLAS", "Files"], swiftSettings: optimized),
        .target(name: "Datasets", dependencies: ["CZlib", "CPNG", "CImageDecode", "CVideoDecode", "Tensor", "Files"], swiftSettings: unchecked),
        .target(name: "Training", dependencies: ["NN", "Datasets"], swiftSettings: unchecked),
        .target(name: "Tracking", dependencies: [.product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")], swiftSettings: strict),
        // ONNX's protobuf messages, generated once from onnx.proto (scripts/generate-onnx-proto.sh)
        // and committed, so no build runs protoc; ONNX turns them into ollie models and back.
        .target(name: "ONNXProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "ONNX", dependencies: ["NN", "Files", "ONNXProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                swiftSettings: strict),
        .target(name: "Session", dependencies: ["Training", "Tracking", "Files", "ONNX"], swiftSettings: strict),
        .target(name: "Cluster", dependencies: ["CMPI", "Training"], swiftSettings: strict),
        .executableTarget(name: "ollie", dependencies: [
            "Session", "CReadline", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: strict),
        .executableTarget(name: "ollie-bench", dependencies: [
            "Training",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: unchecked),

        .testTarget(name: "TensorTests", dependencies: ["Tensor"], swiftSettings: strict),
        .testTarget(name: "FilesTests", dependencies: ["Files"], swiftSettings: strict),
        .testTarget(name: "NNTests", dependencies: ["NN", "CBLAS"], resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "CPNG", "CJPEG"], swiftSettings: strict),
        .testTarget(name: "TrainingTests", dependencies: ["Training"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "TrackingTests", dependencies: ["Tracking"], swiftSettings: strict),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", "ONNXProto", "NN"], swiftSettings: strict),
        .testTarget(name: "SessionTests", dependencies: ["Session", "CPNG"], swiftSettings: strict),
        .testTarget(name: "OllieTests", dependencies: ["Session", "ollie", "NN", "Tracking"], swiftSettings: strict),
    ]
)

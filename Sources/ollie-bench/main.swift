import ArgumentParser
import Datasets
import Foundation
import NN
import Tensor
import Training

/// Times the reference recipe on a dataset: per epoch seconds, images/s, train loss and test
/// accuracy, plus the time to load the data and to evaluate the test set. Results go in
/// BENCHMARKS.md with the command line that made them.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ollie-bench",
        abstract: "Train the reference convnet and time it.")

    @Option(help: "Dataset name (mnist, fashion-mnist) or an IDX directory.") var data = "mnist"
    @Option(help: "A folder of video clips (train/ and test/ of class folders) instead of --data.") var videos: String?
    @Option(help: "Frames per clip (with --videos).") var frames = 16
    @Option(help: "Frame side in pixels (with --videos).") var size = 32
    @Option(help: "Minibatch size.") var batch = 128
    @Option(help: "Learning rate.") var lr: Float = 3e-3
    @Option(help: "Standard deviation of the noise added to training inputs.") var noise: Float = 0.1
    @Option(help: "Epochs to train.") var epochs = 3
    @Option(help: "Worker threads.") var threads = 2
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Model: conv or mlp.") var model = "conv"
    @Option(help: "A layer spec instead of --model, e.g. \"conv 5 16 stride 2 relu | pool 2 | dense 10\".") var spec: String?
    @Flag(help: "The portable layers only (no fast-path rewrites).") var portable = false
    @Flag(help: "Run the full reference policy (early exit, LR drops); default: exactly N epochs.") var policy = false

    func run() throws {
        try BLAS.load()
        print("ollie-bench: kernels \(Kernels.setName), OpenBLAS core \(BLAS.coreName), \(threads) thread(s), seed \(seed)")
        var started = Date()
        let dataset = if let videos {
            try DatasetCatalog.load(videosDirectory: videos, frames: frames, size: (size, size),
                                 cache: DecodedCache(directory: DecodedCache.defaultDirectory())).dataset
        } else if DatasetCatalog.names.contains(data) {
            try DatasetCatalog.load(data)
        } else {
            try DatasetCatalog.load(idxDirectory: data)
        }
        print(String(format: "load %@: %.3f s (%d train, %d test)", dataset.name, Date().timeIntervalSince(started),
                     dataset.train.count, dataset.test.count))
        let input = dataset.sampleShape
        let net: Model
        if let spec {
            net = try ModelSpec(parsing: spec).compile(inputShape: input, classes: dataset.classCount, seed: seed, fastPaths: !portable)
        } else {
            net = model == "mlp"
                ? try Model.mlp(inputShape: input, hidden: [128], classes: dataset.classCount, seed: seed)
                : try Model.referenceConvNet(inputShape: input, classes: dataset.classCount, seed: seed, fastPaths: !portable)
        }
        print("model: \(net.description) (\(net.parameterCount) parameters)")
        var settings = Hyperparameters()
        settings.threads = threads
        settings.seed = seed
        settings.batchSize = batch
        settings.learningRate = lr
        settings.noise = noise
        settings.shuffle = false   // conv.jl's dataset order, as the numbers in BENCHMARKS.md were taken
        if !policy { settings.target = 2; settings.stopAfter = Int.max / 2; settings.patience = Int.max / 2 }
        let trainer = try Trainer(model: net, dataset: dataset, settings: settings)
        var epochTimes: [Double] = []
        trainer.train(epochs: epochs) { event in
            switch event {
            case .epochFinished(let m):
                epochTimes.append(m.epochSeconds)
                print(String(format: "epoch %2d  train %.2f s  %6.0f img/s  loss %.4f  accuracy %.4f  scoring pass %.3f s",
                             m.epoch, m.epochSeconds, m.imagesPerSecond, m.trainLoss, m.accuracy, m.scoringSeconds))
            case .batchFinished, .epochClosed: break
            default: print("  \(event)")
            }
        }
        started = Date()
        let test = trainer.evaluate(dataset.test)
        print(String(format: "test pass: %.3f s, accuracy %.4f", Date().timeIntervalSince(started), test.accuracy))
        if let best = epochTimes.min() {
            let median = epochTimes.sorted()[epochTimes.count / 2]
            print(String(format: "epoch seconds: best %.2f, median %.2f; peak RSS %.0f MB", best, median, peakResidentMegabytes()))
        }
    }
}

/// VmHWM from /proc/self/status: the most memory the process has held.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kb / 1024
}

Bench.main()

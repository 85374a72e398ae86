/// The four file names every IDX dataset folder holds (each may also end in `.gz`).
enum IDXFiles {
    static let trainImages = "train-images-idx3-ubyte"
    static let trainLabels = "train-labels-idx1-ubyte"
    static let testImages = "t10k-images-idx3-ubyte"
    static let testLabels = "t10k-labels-idx1-ubyte"
    static let all = [trainImages, trainLabels, testImages, testLabels]
}

/// What the catalog knows about a named dataset: its classes and where to download it from.
struct KnownDataset: Sendable {
    let name: String
    let classNames: [String]
    let mirrors: [String]
    /// Accepted MD5s of each downloaded `.gz` file, checked before a download is kept.
    let checksums: [String: [String]]
    /// A Debian package that installs the files into /usr/share/datasets/NAME, if there is one.
    let debianPackage: String?

    static let all: [KnownDataset] = [mnist, fashionMNIST]

    static func named(_ name: String) -> KnownDataset? { all.first { $0.name == name } }

    static let mnist = KnownDataset(
        name: "mnist",
        classNames: (0...9).map(String.init),
        mirrors: ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        checksums: [
            // Two training-image files circulate: the official one and a copy with the same
            // 60,000 images in another order within each class (see ../shared/datasets/mnist/README.md).
            "train-images-idx3-ubyte.gz": ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "cca5a2480530c91fbcc4f0ac2eb7efb5"],
            "train-labels-idx1-ubyte.gz": ["d53e105ee54ea40749a09fcbcd1e9432"],
            "t10k-images-idx3-ubyte.gz": ["9fb629c4189551a2d022fa330f9573f3"],
            "t10k-labels-idx1-ubyte.gz": ["ec29112dd5afa0611ce80d1b7f02629c"],
        ],
        debianPackage: nil)

    static let fashionMNIST = KnownDataset(
        name: "fashion-mnist",
        classNames: ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        mirrors: ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        checksums: [
            "train-images-idx3-ubyte.gz": ["8d4fb7e6c68d591d4c3dfef9ec88bf0d"],
            "train-labels-idx1-ubyte.gz": ["25c81989df183df01b3e8a0aad5dffbe"],
            "t10k-images-idx3-ubyte.gz": ["bef4ecab320f06d8554ea6380940ec79"],
            "t10k-labels-idx1-ubyte.gz": ["bb300cfdad3c16e7a12a480ee83cd310"],
        ],
        debianPackage: "dataset-fashion-mnist")
}

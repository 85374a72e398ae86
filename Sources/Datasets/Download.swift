import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Fetches a named dataset's four files from public mirrors, checking each file's MD5 before
/// it is moved into place (so a half-downloaded file is never mistaken for data).
enum Download {
    static let mirrors: [String: [String]] = [
        "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    ]

    /// Accepted MD5s of each .gz file. MNIST's training images have two: the official file and
    /// a re-ordered copy with the same images and labels.
    static let checksums: [String: [String: [String]]] = [
        "mnist": [
            "train-images-idx3-ubyte.gz": ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "cca5a2480530c91fbcc4f0ac2eb7efb5"],
            "train-labels-idx1-ubyte.gz": ["d53e105ee54ea40749a09fcbcd1e9432"],
            "t10k-images-idx3-ubyte.gz": ["9fb629c4189551a2d022fa330f9573f3"],
            "t10k-labels-idx1-ubyte.gz": ["ec29112dd5afa0611ce80d1b7f02629c"],
        ],
        "fashion-mnist": [
            "train-images-idx3-ubyte.gz": ["8d4fb7e6c68d591d4c3dfef9ec88bf0d"],
            "train-labels-idx1-ubyte.gz": ["25c81989df183df01b3e8a0aad5dffbe"],
            "t10k-images-idx3-ubyte.gz": ["bef4ecab320f06d8554ea6380940ec79"],
            "t10k-labels-idx1-ubyte.gz": ["bb300cfdad3c16e7a12a480ee83cd310"],
        ],
    ]

    static func fetch(_ name: String, into folder: String, mirrors: [String], timeout: TimeInterval = 60) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let f = DatasetCatalog.fileNames
        for base in [f.trainImages, f.trainLabels, f.testImages, f.testLabels] {
            let file = base + ".gz"
            var failures: [String] = []
            var fetched = false
            for mirror in mirrors where !fetched {
                guard let url = URL(string: mirror + file) else { continue }
                do {
                    let data = try get(url, timeout: timeout)
                    let sum = MD5.hex(data)
                    if let known = checksums[name]?[file], !known.contains(sum) {
                        failures.append("\(url): MD5 \(sum) does not match")
                        continue
                    }
                    let target = URL(fileURLWithPath: "\(folder)/\(file)")
                    try data.write(to: target, options: .atomic)
                    fetched = true
                } catch {
                    failures.append("\(url): \(error.localizedDescription)")
                }
            }
            guard fetched else { throw DatasetError(failures.joined(separator: "; ")) }
        }
    }

    /// A blocking GET (the REPL waits for `load` anyway).
    static func get(_ url: URL, timeout: TimeInterval) throws -> Data {
        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        var request = URLRequest(url: url)
        request.timeoutInterval = timeout
        URLSession.shared.dataTask(with: request) { data, response, error in
            box.result = {
                if let error { return .failure(error) }
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                guard status == 200, let data else { return .failure(DatasetError("HTTP \(status)")) }
                return .success(data)
            }()
            done.signal()
        }.resume()
        done.wait()
        return try box.result!.get()
    }
}

private final class ResponseBox: @unchecked Sendable {
    var result: Result<Data, Error>?
}

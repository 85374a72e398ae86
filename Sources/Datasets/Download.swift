import Foundation

/// Fetches a dataset's four `.gz` files from the first mirror that has each, keeping a file only
/// once its MD5 is one of the published ones: it is written to a hidden temporary name and renamed
/// into place after the check, so a cut-off or wrong download is never mistaken for data.
enum Download {
    /// Returns nothing on success; throws `Failure` with one reason per failed attempt.
    struct Failure: Error {
        let reasons: [String]
    }

    /// `checksums` maps each file name to its accepted MD5s. Files already in `folder` (raw or
    /// `.gz`) are kept, so an interrupted download resumes where it stopped.
    static func fetch(checksums: [String: [String]], from mirrors: [String], into folder: String,
                      idleSeconds: Double = 30) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw DatasetError.cacheNotWritable(path: folder, reason: error.localizedDescription)
        }
        guard !mirrors.isEmpty else { throw Failure(reasons: ["no mirrors to download from"]) }
        for file in checksums.keys.sorted() {
            let base = file.hasSuffix(".gz") ? String(file.dropLast(3)) : file
            let present = [base, base + ".gz"].contains { FileManager.default.fileExists(atPath: "\(folder)/\($0)") }
            if present { continue }
            try fetch(file, accepting: checksums[file] ?? [], from: mirrors, into: folder, idleSeconds: idleSeconds)
        }
    }

    private static func fetch(_ file: String, accepting sums: [String], from mirrors: [String], into folder: String,
                              idleSeconds: Double) throws {
        var reasons: [String] = []
        for mirror in mirrors {
            let address = mirror.hasSuffix("/") ? mirror + file : mirror + "/" + file
            guard let url = URL(string: address) else { reasons.append("\(address): not a URL"); continue }
            let bytes: [UInt8]
            do {
                bytes = try HTTP.get(url, idleSeconds: idleSeconds)
            } catch {
                reasons.append("\(address): \(error)")
                continue
            }
            let temporary = "\(folder)/.\(file).\(ProcessInfo.processInfo.processIdentifier).part"
            let final = "\(folder)/\(file)"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
                throw DatasetError.cacheNotWritable(path: folder, reason: "cannot create \(temporary)")
            }
            let sum = MD5.hex(bytes)
            guard sums.contains(sum) else {
                try? FileManager.default.removeItem(atPath: temporary)
                reasons.append("\(address): MD5 \(sum) is not the published \(sums.joined(separator: " or "))")
                continue
            }
            // rename(2) replaces atomically: readers see no file or the whole, checked file.
            guard rename(temporary, final) == 0 else {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(atPath: temporary)
                throw DatasetError.cacheNotWritable(path: folder, reason: "cannot rename into \(final): \(reason)")
            }
            return
        }
        throw Failure(reasons: reasons)
    }
}

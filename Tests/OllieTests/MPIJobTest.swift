import Foundation
import XCTest

/// What the tests under a real `mpirun` share (MPITests, MPISweepTests): the ollie binary, a
/// program run in the test folder, and `mpirun -np N ollie`.
protocol MPIJobTest: AnyObject {
    var folder: String { get }
    var mpirun: String { get }
}

extension MPIJobTest {
    var binary: String { OllieProcess.binary(besides: Self.self) }

    /// Runs a program in the test folder; returns (status, stdout + stderr, seconds).
    func run(_ program: String, _ arguments: [String], environment extra: [String: String] = [:]) throws -> (Int32, String, Double) {
        let process = OllieProcess.make(program, arguments, in: folder, folder: folder, environment: extra)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), Date().timeIntervalSince(started))
    }

    /// `mpirun -np N ollie --db DB.sqlite ARGS…` (as root in CI, on 2 cores: hence the flags).
    func mpiOllie(ranks: Int, database: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, Double) {
        try run(mpirun, ["-np", String(ranks), "--oversubscribe", "--allow-run-as-root", binary, "--db", "\(folder)/\(database).sqlite"] + arguments,
                environment: environment)
    }
}

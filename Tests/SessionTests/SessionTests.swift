import XCTest
import Foundation
import Datasets
import NN
import Tensor
import Tracking
@testable import Session

/// Collects what commands print.
final class BufferConsole: Console {
    var lines: [String] = []
    var progressLines = 0
    let isInteractive = false
    func write(_ line: String) { lines.append(contentsOf: line.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)) }
    func progress(_ line: String) { progressLines += 1 }
    var text: String { lines.joined(separator: "\n") }
    func clear() { lines = [] }
}

/// Four classes of 8×8 images: class k lights quadrant k. Small enough for the conv net to train in milliseconds.
func quadrants(train: Int = 256, test: Int = 64) -> Dataset {
    var random = Random(seed: 3)
    func split(_ count: Int) -> Split {
        var images = [Float](repeating: 0, count: count * 64), labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let k = Int(random.next() % 4)
            labels[i] = Int32(k)
            for p in 0..<64 where ((p / 8) / 4) * 2 + (p % 8) / 4 == k { images[i * 64 + p] = 0.7 + 0.2 * random.nextFloat() }
        }
        return Split(images: images, labels: labels)
    }
    return Dataset(name: "quadrants", train: split(train), test: split(test), height: 8, width: 8, channels: 1,
                   classNames: ["a", "b", "c", "d"], source: "memory")
}

class SessionTestCase: XCTestCase {
    var session: Session!
    var console: BufferConsole!
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "ollie-session-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        session = Session(store: try RunStore(path: folder + "/runs.sqlite"), checkpointDirectory: folder + "/checkpoints")
        session.decodedCache = DecodedCache(directory: folder + "/decoded")   // never the user's cache
        console = BufferConsole()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    /// Runs a line; fails the test if its success differs from `ok`.
    @discardableResult
    func run(_ line: String, ok: Bool = true, file: StaticString = #filePath, lineNumber: UInt = #line) -> String {
        console.clear()
        let result = session.execute(line, console: console)
        XCTAssertEqual(result, ok, "\(line) → \(console.text)", file: file, line: lineNumber)
        return console.text
    }

    func loadQuadrants() {
        session.workbench = .data(quadrants())
        session.settings.batchSize = 32
        session.settings.target = 2   // unreachable: these images are easy
        session.settings.noise = 0.1   // conv.jl's recipe, which these tests were written against
        session.settings.shuffle = false
    }
}

final class SessionCommandTests: SessionTestCase {
    func testUnknownCommandSuggestsTheNearest() {
        XCTAssertEqual(run("tarin 1", ok: false), "error: unknown command 'tarin' — did you mean 'train'? (type help for the list)")
        XCTAssertEqual(run("xyzzy", ok: false), "error: unknown command 'xyzzy'; type help for the list of commands")
    }

    func testWrongArityShowsUsage() {
        XCTAssertEqual(run("set lr", ok: false), "error: usage: set KEY VALUE   (e.g. set lr 3e-4)")
    }

    func testBadValuesAreRejectedAndNothingChanges() {
        XCTAssertTrue(run("set lr fast", ok: false).hasPrefix("error: lr must be a number"))
        XCTAssertTrue(run("set batch 0", ok: false).contains("whole number from 1"))
        XCTAssertTrue(run("set optimizer adagrad", ok: false).contains("adam, adamw, sgd, momentum, nesterov, rmsprop"))
        XCTAssertTrue(run("set lrr 1", ok: false).contains("did you mean 'lr'"))
        XCTAssertEqual(session.settings.learningRate, 3e-3)
        XCTAssertEqual(session.settings.batchSize, 128)
    }

    func testCommandsOutOfOrderSayWhatToRunFirst() {
        XCTAssertEqual(run("train", ok: false), "error: no dataset loaded; load one first: load mnist")
        XCTAssertEqual(run("build conv", ok: false), "error: no dataset loaded; load one first: load mnist")
        XCTAssertEqual(run("summary", ok: false), "error: no model yet; run: load mnist, then build conv")
        loadQuadrants()
        XCTAssertEqual(run("accuracy", ok: false), "error: no model yet; build one first: build conv")
        XCTAssertTrue(run("restore best", ok: false).contains("no model yet") || console.text.contains("no best checkpoint"))
    }

    func testMissingDataIsTheEnginesClearError() {
        let text = run("load idx /nonexistent/data", ok: false)
        XCTAssertTrue(text.hasPrefix("error: /nonexistent/data is not a folder"), text)
        XCTAssertTrue(run("load cifar", ok: false).contains("unknown dataset 'cifar'"))
    }

    func testSetAndShow() {
        XCTAssertEqual(run("set lr 1e-3"), "lr = 1e-3 (was 3e-3)")
        let shown = run("show")
        XCTAssertNotNil(shown.range(of: "\nlr +1e-3 \\* +3e-3", options: .regularExpression), shown)   // the name column is as wide as the longest name
        XCTAssertTrue(shown.contains("stop-after"), shown)
        run("set optimizer momentum; set seed 7; set threads 1; set patience 3; set decay 0.5; set target 0.99; set stop-after 4; set noise 0; set shuffle on")
        XCTAssertEqual(session.settings.optimizer, .momentum)
        XCTAssertEqual(session.settings.seed, 7)
        XCTAssertEqual([session.settings.threads, session.settings.patience, session.settings.stopAfter], [1, 3, 4])
        XCTAssertEqual(session.settings.decay, 0.5)
        XCTAssertTrue(session.settings.shuffle)
    }

    func testBuildSummaryTrainAndEvaluate() throws {
        loadQuadrants()
        XCTAssertEqual(run("build conv"), """
            built conv: conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2
                        | conv 3x3 32 relu | pool 2 | dense 4
            14,180 parameters (a new run starts at the next train)
            """)
        let summary = run("summary")
        XCTAssertTrue(summary.hasPrefix("model: conv 3x3 16 relu | pool 2 |"), summary)
        let conv1 = summary.split(separator: "\n").first { $0.hasPrefix("0: conv 3x3 16") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        XCTAssertEqual(conv1?.suffix(2), ["16×8×8", "160"], summary)
        XCTAssertTrue(summary.contains("9: flatten (implied)"), summary)
        XCTAssertTrue(summary.hasSuffix("total: 14,180 trainable parameters"), summary)
        let trained = run("train 2")
        XCTAssertTrue(trained.contains("run 1 started (quadrants, epoch 1)"), trained)
        XCTAssertTrue(trained.contains("[1] test accuracy"), trained)
        XCTAssertTrue(trained.contains("[2] test accuracy"), trained)
        XCTAssertTrue(trained.contains(" -> new best accuracy"), trained)
        XCTAssertEqual(session.trainer?.epochsDone, 2)
        let accuracy = run("accuracy")
        let value = Double(accuracy.split(separator: " ")[2])!
        XCTAssertGreaterThan(value, 0.9, accuracy)
        XCTAssertTrue(run("accuracy train").hasPrefix("train accuracy "))
        XCTAssertTrue(run("loss").hasPrefix("test loss "))
        XCTAssertTrue(run("accuracy sideways", ok: false).contains("choose test, train or val"))
        let confusion = run("confusion")
        XCTAssertTrue(confusion.hasPrefix("true\\pred"), confusion)
        XCTAssertEqual(confusion.split(separator: "\n").count, 2 + 4)
        let predicted = run("predict 3")
        XCTAssertTrue(predicted.contains("test image 3: label "), predicted)
        XCTAssertTrue(predicted.contains("; model: "), predicted)
        XCTAssertTrue(run("show 0 train").contains("train image 0"))
        XCTAssertTrue(run("predict 999", ok: false).contains("from 0 to 63"))
        XCTAssertTrue(run("misses 2").contains("test images misclassified"))
    }

    func testASetBetweenTrainsIsRecordedWithItsEpoch() throws {
        loadQuadrants()
        run("build conv; train 1")
        XCTAssertEqual(run("set lr 1e-3"), "lr = 1e-3 (was 3e-3; applies from epoch 2 of run 1)")
        run("train 1")
        XCTAssertEqual(session.trainer?.learningRate, 1e-3)
        let rows = try session.store!.query("SELECT value, from_epoch FROM params WHERE run = 1 AND name = 'lr'").rows
        XCTAssertEqual(rows, [["3e-3", "1"], ["1e-3", "2"]])
        let metrics = try session.store!.query("SELECT epoch, value FROM metrics WHERE run = 1 AND name = 'learning_rate' ORDER BY epoch").rows
        XCTAssertEqual(metrics.map { $0[0] }, ["1", "2"])
        let compare = run("compare")
        XCTAssertTrue(compare.contains("run 1"), compare)
    }

    func testTrackingCommands() throws {
        loadQuadrants()
        run("build conv; train 1; note \"first\"; set lr 1e-3; build conv; train 1")
        let runs = run("runs")
        XCTAssertEqual(runs.split(separator: "\n").count, 4, runs)
        XCTAssertTrue(runs.contains("first"), runs)
        XCTAssertEqual(run("runs where lr < 2e-3").split(separator: "\n").count, 3)
        XCTAssertTrue(run("runs sideways", ok: false).contains("usage"))
        let compare = run("compare 1 2")
        XCTAssertTrue(compare.contains("lr") && compare.contains("*"), compare)
        XCTAssertTrue(run("compare 99", ok: false).contains("no run 99"))
        XCTAssertTrue(run("compare x", ok: false).contains("unexpected 'x' (expected a run id"))
        let plot = run("plot train_loss")
        XCTAssertTrue(plot.hasPrefix("train_loss"), plot)
        XCTAssertTrue(run("plot nothing", ok: false).contains("no 'nothing' values"))
        XCTAssertTrue(run("report").hasPrefix("| | run 1 | run 2 |"))
        let html = folder + "/r/report.html"
        XCTAssertEqual(run("report html \(html)"), "wrote \(html) (2 runs, html)")
        XCTAssertTrue(try String(contentsOfFile: html, encoding: .utf8).contains("<svg"))
        run("report 1 2 \(folder)/r.csv")
        XCTAssertTrue(try String(contentsOfFile: folder + "/r.csv", encoding: .utf8).hasPrefix("run,epoch,metric,value\n1,1,"))
        run("report 1 2 csv wide \(folder)/wide.csv")
        XCTAssertTrue(try String(contentsOfFile: folder + "/wide.csv", encoding: .utf8).hasPrefix("setting,run 1,run 2"))
        XCTAssertTrue(run("report html", ok: false).contains("needs a file name"))
        XCTAssertTrue(run("sql select count(*) as n from runs").hasPrefix("n\n─\n2"))
        XCTAssertTrue(run("sql delete from runs", ok: false).contains("read-only"))
        XCTAssertEqual(try session.store!.runs().count, 2)
    }

    func testAQueryQuotedAsOneWordRuns() {
        XCTAssertEqual(run("sql \"select 1 as one\""), "one\n───\n1\n(1 row)")
        XCTAssertEqual(run("sql \"select 'a;b' as s\""), "s\n───\na;b\n(1 row)")
        // SQL's own quotes inside a query are left alone.
        XCTAssertEqual(run("sql select 'x' as q"), "q\n─\nx\n(1 row)")
    }

    func testAHugeResultSaysHowManyRowsWereNotShown() {
        let text = run("sql WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1500) SELECT x FROM c")
        XCTAssertTrue(text.hasSuffix("(the first 1000 rows; 500 more not shown: narrow the query with WHERE, or page with LIMIT 1000 OFFSET 1000)"), String(text.suffix(200)))
        XCTAssertEqual(text.split(separator: "\n").count, 2 + 1000 + 1)
    }

    func testRunsThatMatchNothingSayHowManyThereAre() {
        XCTAssertEqual(run("runs where lr < 1e-9"), "no runs recorded yet; train one: train 1")
        loadQuadrants()
        run("build conv; train 1")
        XCTAssertEqual(run("runs where lr < 1e-9"), "no runs match where lr < 1e-9 (of 1 recorded run); runs all lists them all")
        let refused = run("runs where lr < abc", ok: false)
        XCTAssertTrue(refused.hasPrefix("error: 'lr < abc' compares lr with 'abc', which is not a number"), refused)
        XCTAssertEqual(refused.split(separator: "\n").count, 1, refused)
    }

    func testSaveRestoreAndReset() throws {
        loadQuadrants()
        run("build conv; train 1")
        let path = folder + "/mine.safetensors"
        XCTAssertEqual(run("save \(path)"), "saved \(path) (epoch 1, 8 steps)")
        let before = session.model!.parameters.map(\.value.data)
        run("train 1")
        XCTAssertNotEqual(session.model!.parameters.map(\.value.data), before)
        XCTAssertTrue(run("restore \(path)").hasPrefix("restored \(path): epoch 1, 8 steps, lr 3e-3"))
        XCTAssertEqual(session.model!.parameters.map(\.value.data), before)
        XCTAssertEqual(session.trainer?.epochsDone, 1)
        let best = run("restore best")
        XCTAssertTrue(best.hasPrefix("restored \(folder)/checkpoints/run-1-best.safetensors"), best)
        let missing = run("restore /nonexistent.safetensors", ok: false)
        XCTAssertTrue(missing.contains("no checkpoint at /nonexistent.safetensors"), missing)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: folder + "/bad.safetensors"))
        XCTAssertTrue(run("restore \(folder)/bad.safetensors", ok: false).contains("not a valid safetensors file"))
        XCTAssertTrue(run("reset").hasPrefix("built conv"))
        XCTAssertEqual(session.trainer?.epochsDone, 0)
        XCTAssertNil(session.runID)
    }

    /// A safetensors file of weights only (as PyTorch writes them) restores the weights; the
    /// optimizer starts fresh with the session's settings.
    func testRestoringAFileOfWeightsOnlyKeepsTheSettingsOptimizer() throws {
        loadQuadrants()
        run("set optimizer momentum; set lr 0.05; build conv; train 1")
        let weights = session.model!.parameters.map(\.value.data)
        let path = folder + "/weights.safetensors"
        var tensors: [String: Tensor] = [:]
        for p in session.model!.parameters { tensors[p.name] = p.value.copy() }
        try SafeTensors.encode(tensors).write(to: URL(fileURLWithPath: path))
        run("reset")
        XCTAssertNotEqual(session.model!.parameters.map(\.value.data), weights)
        XCTAssertEqual(run("restore \(path)"),
                       "restored the weights in \(path); it holds no optimizer state, so momentum starts fresh at lr 0.05")
        XCTAssertEqual(session.model!.parameters.map(\.value.data), weights)
        XCTAssertEqual(session.trainer?.optimizer.kind, "momentum")
        XCTAssertEqual(session.trainer?.optimizer.stepCount, 0)
        XCTAssertTrue(run("train 1").contains("[1] test accuracy"))
    }

    func testRestoreBringsBackTheSavedOptimizerAndAFailedRestoreChangesNothing() throws {
        loadQuadrants()
        run("set optimizer momentum; build conv; train 1")
        let path = folder + "/momentum.safetensors"
        run("save \(path)")
        run("set optimizer adam; build mlp 8")
        let mlp = session.model
        // The saved model's weights do not fit an MLP of another size: nothing may change.
        let other = folder + "/other.safetensors"
        run("build mlp 16; save \(other); build mlp 8")
        let kept = session.model
        try Data(try Data(contentsOf: URL(fileURLWithPath: other)).prefix(100)).write(to: URL(fileURLWithPath: other))
        XCTAssertTrue(run("restore \(other)", ok: false).contains("not a valid safetensors file"))
        XCTAssertTrue(session.model === kept)
        XCTAssertFalse(session.model === mlp)
        XCTAssertTrue(run("restore \(path)").hasPrefix("restored \(path): epoch 1, 8 steps"))
        XCTAssertEqual(session.settings.optimizer, .momentum)
        XCTAssertEqual(session.trainer?.optimizer.kind, "momentum")
        XCTAssertEqual(session.trainer?.optimizer.stepCount, 8)
        XCTAssertEqual(session.modelSpec, ModelSpec.referenceConvNet(classes: 4))
    }

    func testMLPBuildsWithHiddenSizes() {
        loadQuadrants()
        XCTAssertEqual(run("build mlp 16 8"), "built mlp 16 8: dense 16 relu | dense 8 relu | dense 4\n1,212 parameters (a new run starts at the next train)")
        XCTAssertTrue(run("build mlp big", ok: false).contains("whole numbers"))
        XCTAssertTrue(run("build resnet", ok: false).contains("unknown layer 'resnet'"))
        run("train 1")
    }

    func testHelpListsEveryCommandAndShowsExamples() {
        // Summaries wrap over lines: compare with the line breaks and indents as single spaces.
        let help = run("help").split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for command in session.commands {
            // The list shows each summary's first sentence; help COMMAND the whole of it.
            XCTAssertTrue(help.contains(session.firstSentence(command.summary).split(whereSeparator: \.isWhitespace).joined(separator: " ")), command.name)
            let one = run("help \(command.name)").split(whereSeparator: \.isWhitespace).joined(separator: " ")
            XCTAssertTrue(one.contains("example: \(command.example)"), command.name)
            XCTAssertTrue(one.contains(command.summary.split(whereSeparator: \.isWhitespace).joined(separator: " ")), command.name)
        }
        XCTAssertTrue(run("help tarin").contains("did you mean 'train'"))
    }

    func testLinesSplitOnSemicolonsIgnoreCommentsAndKeepQuotes() throws {
        XCTAssertEqual(try LineParser.commands(in: "a b; c 'd e' # f; g"), [["a", "b"], ["c", "d e"]])
        XCTAssertEqual(try LineParser.commands(in: "note \"x # y; z\""), [["note", "x # y; z"]])
        XCTAssertEqual(try LineParser.commands(in: "  ;; # only a comment"), [])
        XCTAssertThrowsError(try LineParser.commands(in: "note \"open"))
        // ~/ at the start of an unquoted word is the home folder, as in a shell; nowhere else.
        XCTAssertEqual(try LineParser.segments(in: "save ~/a.safetensors; note ~ '~/x' a~/b ~user", home: "/home/me").map(\.words),
                       [["save", "/home/me/a.safetensors"], ["note", "~", "~/x", "a~/b", "~user"]])
        XCTAssertEqual(try LineParser.segments(in: "save ~/a", home: "/home/me")[0].text, "save ~/a", "the text stays as typed")
        XCTAssertEqual(run("note \"open", ok: false), "error: unclosed \" quote; close it or remove it")
    }

    func testHistoryAndScripts() throws {
        run("set lr 1e-3; show")
        XCTAssertEqual(run("history"), "   1  set lr 1e-3\n   2  show")
        let script = folder + "/s.ollie"
        try "# a script\nset batch 64\n\nset lr nope\nset batch 32\n".write(toFile: script, atomically: true, encoding: .utf8)
        let text = run("run \(script)", ok: false)
        XCTAssertTrue(text.contains("error: lr must be a number"), text)
        XCTAssertTrue(text.hasSuffix("error: \(script):4: stopped at the failing line above"), text)
        XCTAssertEqual(session.settings.batchSize, 64)
        XCTAssertTrue(run("run /nonexistent.ollie", ok: false).contains("cannot read /nonexistent.ollie"))
        run("quit")
        XCTAssertTrue(session.quitRequested)
    }

    func testCtrlCStopsTheRestOfTheLineAndTheScript() throws {
        loadQuadrants()
        run("build conv")
        session.isInterrupted = { true }
        let text = run("train 3; set lr 1e-3", ok: false)
        XCTAssertTrue(text.contains(" -> interrupted in epoch 1 after batch 1/8"), text)
        XCTAssertTrue(text.hasSuffix("interrupted (Ctrl-C); not run: set lr 1e-3"), text)
        XCTAssertEqual(session.settings.learningRate, 3e-3)
        XCTAssertEqual(try session.store!.query("SELECT status FROM runs").rows, [["interrupted"]])
        let script = folder + "/t.ollie"
        try "train 1\nset lr 1e-3\n".write(toFile: script, atomically: true, encoding: .utf8)
        let replay = run("run \(script)", ok: false)
        XCTAssertTrue(replay.hasSuffix("\(script):1: interrupted (Ctrl-C); the rest of the script was not run"), replay)
        XCTAssertEqual(session.settings.learningRate, 3e-3)
        session.isInterrupted = { false }
        XCTAssertTrue(run("train 1").contains("[1] test accuracy"))
    }

    func testCommandsAreRecordedInTheDatabase() throws {
        run("set lr 1e-3")
        run("tarin", ok: false)
        let rows = try session.store!.query("SELECT command, failed FROM commands ORDER BY id").rows
        XCTAssertEqual(rows, [["set lr 1e-3", "0"], ["tarin", "1"]])
    }

    func testCompletion() {
        XCTAssertEqual(session.completions(for: "tr"), ["train"])
        XCTAssertEqual(session.completions(for: "set l"), ["lr", "lr-mult"])
        XCTAssertEqual(session.completions(for: "set optimizer "), ["adam", "adamw", "sgd", "momentum", "nesterov", "rmsprop"])
        XCTAssertEqual(session.completions(for: "load f"), ["fashion-mnist"])
        XCTAssertTrue(session.completesFiles(for: "restore chec"))
        XCTAssertTrue(session.completesFiles(for: "load idx da"))
        XCTAssertFalse(session.completesFiles(for: "set lr"))
    }

    /// Thousands of random and malformed lines: no crash, one error line at most per command,
    /// and the session keeps its state.
    func testFuzzedLinesNeverCrashOrLoseState() throws {
        loadQuadrants()
        run("build conv; set lr 1e-3")
        let model = session.model
        var random = Random(seed: 99)
        let words = session.commands.map(\.name) + ["lr", "1e-3", "-1", "nan", "inf", "\"", "'", ";", "#", "💥", "\u{0}", "\t",
                                                      String(repeating: "x", count: 5000), "9999999999999999999999", "test", "train",
                                                      "idx", "/dev/null", "where", "<", "best", "0",
                                                      "1@1", "@", "1@0", "1@99", "@1", "batches", "1e-9", "10", "all", "best-and-last"]
        let skipped: Set<String> = ["train", "run", "quit", "exit", "save", "report", "load", "reset", "build", "restore", "sweep", "sweeps"]
        for _ in 0..<3000 {
            var line = ""
            for _ in 0..<Int(random.next() % 6) {
                if random.next() % 5 == 0 {
                    line += String(UnicodeScalar(UInt8(random.next() % 128)))
                } else {
                    line += words[Int(random.next() % UInt64(words.count))] + " "
                }
            }
            // Commands that do slow or outside work are exercised elsewhere.
            let names = ((try? LineParser.commands(in: line)) ?? []).compactMap { $0.first?.lowercased() }
            if names.contains(where: skipped.contains) { continue }
            console.clear()
            _ = session.execute(line, console: console)
        }
        XCTAssertTrue(session.model === model)
        XCTAssertEqual(session.dataset?.name, "quadrants")
        XCTAssertFalse(session.quitRequested)
        run("accuracy")
    }

    /// Ten thousand random and mutated specs through `build`: no crash, and a refused build
    /// leaves the session's model, trainer and run exactly as they were.
    func testTenThousandFuzzedBuildsNeverCrashOrLoseTheModel() throws {
        loadQuadrants()
        run("build conv")
        var random = Random(seed: 77)
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        let words = ["conv", "pool", "gap", "flatten", "dense", "relu", "gelu", "dropout", "batchnorm", "3", "3x3", "1x3x3",
                     "2", "4", "0", "-2", "stride", "pad", "same", "valid", "avg", "0.5", "|", "mlp", "x", "🙂", "999999"]   // (`;`, `#` and quotes: the line parser's own fuzz test)
        let seeds = ["conv 3x3 8 relu | pool 2 | dense 4", "mlp 16", "conv 3 4 stride 2 | batchnorm | gap | dense 4", "conv"]
        var (model, trainer) = (session.model, session.trainer)
        for i in 0..<10_000 {
            var tokens = i % 2 == 0 ? (0..<Int(1 + random.next() % 10)).map { _ in pick(words) }
                                    : pick(seeds).split(separator: " ").map(String.init)
            if i % 2 == 1 {
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let at = Int(random.next() % UInt64(tokens.count))
                    if random.next() % 2 == 0 { tokens[at] = pick(words) } else { tokens.insert(pick(words), at: at) }
                }
            }
            console.clear()
            if session.execute("build " + tokens.joined(separator: " "), console: console) {
                (model, trainer) = (session.model, session.trainer)
                XCTAssertEqual(try session.model!.validate(), [4])
            } else {
                XCTAssertTrue(session.model === model && session.trainer === trainer, "build \(tokens) changed the session")
                XCTAssertLessThanOrEqual(console.lines.filter { $0.hasPrefix("error:") }.count, 1, console.text)
            }
        }
        run("train 1")
    }

    /// `build conv` and the same network typed as a spec are one model: the same run, bit for bit.
    func testThePresetAndItsSpecTypedOutTrainBitForBitAlike() throws {
        loadQuadrants()
        run("build conv; train 2")
        run("build conv 3x3 16 relu | pool 2 | conv 3x3 32 relu | pool 2 | conv 3x3 32 relu | pool 2 | dense 4; train 2")
        let rows = try session.store!.query("""
            SELECT a.epoch, a.name FROM metrics a JOIN metrics b ON b.run = 2 AND b.epoch = a.epoch AND b.name = a.name
            WHERE a.run = 1 AND a.name IN ('train_loss', 'test_accuracy') AND a.value = b.value
            """).rows
        XCTAssertEqual(rows.count, 4, "both epochs' loss and accuracy equal to the last bit")
        XCTAssertEqual(try session.store!.query("SELECT DISTINCT model FROM runs").rows.count, 1, "both runs record the same spec")
    }

    /// RGB images are drawn in their colours on a terminal, grey ones in grey; shades elsewhere.
    func testImagesDrawInColourOnATerminal() {
        let red: [Float] = [1, 0, 0, 0, 0, 1]   // one row: a red pixel, a blue one
        let drawn = renderImage(red, height: 1, width: 2, channels: 3, color: true)
        XCTAssertTrue(drawn.contains("\u{1B}[38;2;255;0;0m"), drawn)
        XCTAssertTrue(drawn.contains("\u{1B}[38;2;0;0;255m"), drawn)
        let grey = renderImage([0.5, 1], height: 1, width: 2, channels: 1, color: true)
        XCTAssertTrue(grey.contains("\u{1B}[38;2;127;127;127m"), grey)
        XCTAssertEqual(renderImage([0, 1], height: 1, width: 2, channels: 1, color: false), "  ██")
    }
}


import FuzzTargets
import Glibc

/// Runs one of statetool's fuzz targets under libFuzzer:
/// `statetool-fuzz TARGET [libFuzzer options and corpus folders]`.
/// A broken invariant aborts, so libFuzzer keeps the input as a crash.

/// Writes `line` to standard error.
func report(_ line: String) {
    _ = (line + "\n").withCString { write(2, $0, strlen($0)) }
}

/// The target named on the command line.
enum Chosen {
    static let target: FuzzTargets.Target = {
        guard CommandLine.arguments.count > 1, let target = FuzzTargets.named(CommandLine.arguments[1]) else {
            report("usage: statetool-fuzz TARGET [libFuzzer options]; targets: \(FuzzTargets.all.map(\.name).joined(separator: ", "))")
            exit(64)
        }
        return target
    }()
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try Chosen.target.run(bytes)
    } catch {
        report("\(Chosen.target.name): \(error)")
        abort()
    }
    return 0
}

/// libFuzzer's driver, for an entry point of our own (SwiftPM names the
/// executable's entry point itself, so libFuzzer's `main` cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

// libFuzzer sees the program name and the options after the target's name: the
// target's slot in argv takes the program name, and argv starts there.
_ = Chosen.target
CommandLine.unsafeArgv[1] = CommandLine.unsafeArgv[0]
var argc = CommandLine.argc - 1
var argv = CommandLine.unsafeArgv + 1
exit(runFuzzerDriver(&argc, &argv, fuzz))

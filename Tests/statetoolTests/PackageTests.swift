import Foundation
import TestSupport
import Testing

/// `Scripts/package`, checked as a host without Swift would use it: the .deb
/// unpacked into a scratch root and its binary run with the toolchain's folder
/// hidden under an empty tmpfs and an empty environment. What it prints must
/// be exactly what the development build prints.
@Suite(.serialized) struct PackageTests {
    /// The package, built once for the suite (a release build: minutes).
    struct Built: Sendable {
        let deb: String
        let root: URL
        var binary: String { root.appendingPathComponent("usr/bin/statetool").path }
    }

    /// Where the package is unpacked, once per test process.
    static let unpackedRoot = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-package-\(getpid())")

    static let built: Result<Built, PackageError> = {
        do {
            let result = try ProcessRunner.run("/bin/bash", ["Scripts/package"])
            guard result.status == 0 else { throw PackageError("Scripts/package failed (\(result.status)): \(result.stderr.suffix(2000))") }
            let deb = Repository.root.appendingPathComponent(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).path
            let root = unpackedRoot
            // The unpacked package is gone when the test process ends.
            atexit { try? FileManager.default.removeItem(at: PackageTests.unpackedRoot) }
            let unpacked = try ProcessRunner.run("/usr/bin/dpkg-deb", ["-x", deb, root.path])
            guard unpacked.status == 0 else { throw PackageError("dpkg-deb -x failed: \(unpacked.stderr)") }
            return .success(Built(deb: deb, root: root))
        } catch let error as PackageError {
            return .failure(error)
        } catch {
            return .failure(PackageError("\(error)"))
        }
    }()

    struct PackageError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs the packaged binary where no Swift can be found: a private mount
    /// namespace with an empty tmpfs over the toolchain's folder, `env -i`.
    private func runWithoutSwift(_ arguments: [String], binary: String? = nil) throws -> ProcessRunner.Result {
        let built = try Self.built.get()
        let toolchain = "/opt/swift"
        let quoted = ([binary ?? built.binary] + arguments).map { "'\($0.replacingOccurrences(of: "'", with: "'\\''"))'" }.joined(separator: " ")
        let script = "mount -t tmpfs none \(toolchain) && test ! -e \(toolchain)/usr/bin/swift && exec env -i \(quoted)"
        return try ProcessRunner.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", script])
    }

    @Test func everyBuildSaysItsVersionAndCommit() throws {
        let version = try String(contentsOf: Repository.root.appendingPathComponent("VERSION"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let printed = try StatetoolRunner.run(["--version"])
        #expect(printed.status == 0)
        #expect(printed.stdout.wholeMatch(of: /(.+) \(commit ([0-9a-f]{12}|unknown)\)\n/)?.output.1 == Substring(version))
    }

    /// The control: the development build, linked against the toolchain's
    /// libraries, cannot even start there.
    @Test func theDevelopmentBuildDoesNotRunWhereThePackagedOneDoes() throws {
        let development = try runWithoutSwift(["--version"], binary: StatetoolRunner.executable.path)
        #expect(development.status != 0)
        #expect(development.stderr.contains("error while loading shared libraries: libswift"))
    }

    @Test(arguments: [
        ["inspect", "Samples/virtiofsd-s1-A.state"],
        ["inspect", "--json", "Samples/good.state.zst"],
        ["validate", "Samples/good.state", "Samples/truncated-chunk.state"],
        ["validate", "Samples/compression-error.state.zst"],
        ["extract", "Samples/two-devices.mig", "--device", "2", "-o", "-"],
        ["migration", "ls", "--json", "Samples/two-devices.mig"],
        ["preflight", "Samples/virtiofsd-s1-A.state", "--shared-dir", "Samples"],
    ])
    func thePackagedBinaryPrintsWhatTheDevelopmentBuildPrints(arguments: [String]) throws {
        let packaged = try runWithoutSwift(arguments)
        let development = try StatetoolRunner.run(arguments)
        #expect(packaged.status == development.status)
        #expect(packaged.stderr == development.stderr)
        let same = packaged.stdoutBytes == development.stdoutBytes
        #expect(same, "stdout differs: \(packaged.stdout.prefix(300))")
        #expect(!packaged.stdoutBytes.isEmpty || !packaged.stderrBytes.isEmpty)
    }

    @Test func theBinaryNeedsNoToolchainLibraryAndSaysItsVersionAndCommit() throws {
        let built = try Self.built.get()
        let dynamic = try ProcessRunner.run("/usr/bin/readelf", ["-d", built.binary])
        #expect(dynamic.status == 0)
        for library in ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime"] {
            #expect(!dynamic.stdout.contains(library), "needs \(library)")
        }
        for library in ["libzstd.so.1", "libz.so.1", "libbz2.so.1.0", "liblzma.so.5"] {
            #expect(dynamic.stdout.contains("[\(library)]"), "does not link \(library)")
        }
        let version = try String(contentsOf: Repository.root.appendingPathComponent("VERSION"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let commit = try ProcessRunner.run("/usr/bin/git", ["rev-parse", "HEAD"]).stdout.prefix(12)
        let printed = try runWithoutSwift(["--version"])
        #expect(printed.status == 0)
        #expect(printed.stdout == "\(version) (commit \(commit))\n")
        #expect(built.deb.hasSuffix("/statetool_\(version)_amd64.deb"))
    }

    @Test func theDebianPackageHoldsTheBinaryItsPageAndCompletions() throws {
        let built = try Self.built.get()
        let contents = try ProcessRunner.run("/usr/bin/dpkg-deb", ["-c", built.deb]).stdout
        for path in [
            "./usr/bin/statetool", "./usr/share/man/man1/statetool.1.gz",
            "./usr/share/bash-completion/completions/statetool", "./usr/share/zsh/vendor-completions/_statetool",
            "./usr/share/fish/vendor_completions.d/statetool.fish",
            "./usr/share/doc/statetool/README.md", "./usr/share/doc/statetool/copyright",
        ] {
            #expect(contents.contains(" \(path)\n"), "missing \(path)")
        }
        let depends = try ProcessRunner.run("/usr/bin/dpkg-deb", ["-f", built.deb, "Depends"]).stdout
        #expect(depends.contains("libc6 (>="))
        for package in ["libzstd1 (>=", "zlib1g (>=", "libbz2-1.0", "liblzma5 (>="] {
            #expect(depends.contains(package), "Depends lacks \(package): \(depends)")
        }

        let completion = built.root.appendingPathComponent("usr/share/bash-completion/completions/statetool").path
        let loaded = try ProcessRunner.run("/bin/bash", ["-c", "source '\(completion)' && complete -p statetool"])
        #expect(loaded.status == 0)
        #expect(loaded.stdout.hasPrefix("complete "))
        #expect(loaded.stdout.hasSuffix(" statetool\n"))

        let page = built.root.appendingPathComponent("usr/share/man/man1/statetool.1.gz").path
        let rendered = try ProcessRunner.run("/bin/bash", ["-o", "pipefail", "-c", "MANWIDTH=100 man -l -P cat '\(page)' 2>/dev/null | col -bx"])
        #expect(rendered.status == 0, "\(rendered.stderr)")
        #expect(rendered.stdout.contains("statetool — Inspect and check the back-end state streams"))
        #expect(rendered.stdout.contains("SYNOPSIS"))
    }
}

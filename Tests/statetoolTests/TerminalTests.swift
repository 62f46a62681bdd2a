import Foundation
import Testing

/// Behaviour that depends on a terminal, checked under `script`, which gives the
/// command a pseudo-terminal for standard output and standard error.
@Suite struct TerminalTests {
    private func underTerminal(_ shellCommand: String) throws -> String {
        try Peer.run("/usr/bin/script", ["-q", "-e", "-c", shellCommand, "/dev/null"]).stdout
    }

    @Test func binaryIsNotWrittenToATerminal() throws {
        let text = try underTerminal("'\(StatetoolRunner.executable.path)' payload Samples/good.state; echo rc=$?")
        #expect(text == "error: refusing to write binary data to a terminal (use -o FILE or a pipe)\r\nrc=2\r\n")
    }

    @Test func progressShowsOnATerminalForLongWorkOnly() throws {
        let tool = StatetoolRunner.executable.path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-progress-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let slow = try underTerminal("(head -c 3000000 /dev/zero; sleep 1.5; head -c 1000 /dev/zero) | '\(tool)' frame - -o \(output)")
        #expect(slow.contains(" read, "))
        #expect(slow.contains("/s"))
        #expect(slow.hasSuffix("\r\u{1B}[K"))
        let quiet = try underTerminal("(head -c 3000000 /dev/zero; sleep 1.5; head -c 1000 /dev/zero) | '\(tool)' frame --quiet - -o \(output)")
        #expect(quiet == "")
        let fast = try underTerminal("'\(tool)' validate Samples/virtiofsd-s1-A.state")
        #expect(fast == "")
    }
}

import Foundation
import TestSupport
import Testing

/// The tests' own way of running programs: a program that blocks fails its
/// test instead of hanging the run.
@Suite struct ProcessRunnerTests {
    @Test func aProgramThatOutlivesItsTimeoutIsKilledAndSaysSo() throws {
        let started = Date()
        let result = try ProcessRunner.run("/bin/sleep", ["30"], timeout: 0.5)
        #expect(result.status == 137)
        #expect(result.stderr.hasSuffix("ProcessRunner: /bin/sleep still ran after 0.5 s: killed\n"), "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 25)
    }

    @Test func aProgramThatEndsInTimeKeepsItsStatusAndOutput() throws {
        let result = try ProcessRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], timeout: 60)
        #expect(result.status == 3)
        #expect(result.stdout == "out\n")
        #expect(result.stderr == "err\n")
    }
}

import Crypto
import Foundation
import TestSupport
import Testing

/// `replay`, `capture` and `serve` against each other, as separate processes
/// over a real vhost-user socket.
@Suite(.serialized) final class LiveBackEndTests {
    let scratch: ScratchDirectory
    var socket: String { scratch.url("vu.sock").path }

    init() throws {
        scratch = try ScratchDirectory("live")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// Starts `statetool serve --once --socket … arguments` and waits for its socket.
    private func serve(_ arguments: [String]) throws -> Process {
        try Peer.start(StatetoolRunner.executable.path, ["serve", "--once", "--socket", socket] + arguments, log: nil, waitingFor: socket)
    }

    private func finish(_ server: Process) {
        if server.isRunning { server.terminate() }
        server.waitUntilExit()
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    private let realState = StatetoolRunner.sample("virtiofsd-s1-A.state")
    private let realPayloadSHA256 = "6fee85a91ea77fc233220eb9aeb758055dca68b6d17e667bc5572609f1f1584b"

    @Test(arguments: [false, true])
    func replayDeliversThePayloadAndReportsTheVerdict(ownDescriptor: Bool) throws {
        let server = try serve(["--record", path("rec"), "--expect-sha256", realPayloadSHA256] + (ownDescriptor ? ["--own-fd"] : []))
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--json", "--socket", socket, realState])
        #expect(result.status == 0)
        let object = try result.jsonObject()
        #expect(object["accepted"] as? Bool == true)
        #expect(object["checkDeviceState"] as? Int == 0)
        #expect(object["payloadBytes"] as? Int == 238_452)
        #expect(object["chunks"] as? Int == 4)
        server.waitUntilExit()
        let payload = try StatetoolRunner.run(["payload", realState])
        #expect(try bytes(path("rec")) == payload.stdoutBytes)
    }

    @Test func replayFromStandardInputAndZstd() throws {
        let compressed = path("s.zst")
        #expect(try StatetoolRunner.run(["compress", realState, "-o", compressed]).status == 0)
        let server = try serve(["--expect-sha256", realPayloadSHA256])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--socket", socket, "-"], stdin: try bytes(compressed))
        #expect(result.status == 0)
        #expect(result.stdout.contains("the back-end accepted the state (CHECK_DEVICE_STATE 0) after "))
    }

    @Test func rejectedStateIsExitThree() throws {
        let server = try serve(["--expect-sha256", String(repeating: "0", count: 64)])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--socket", socket, realState])
        #expect(result.status == 3)
        #expect(result.stdout.contains("the back-end rejected the state (CHECK_DEVICE_STATE 1) after "))
    }

    @Test func refusedTransferIsExitSix() throws {
        let server = try serve(["--reject"])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--socket", socket, realState])
        #expect(result.status == 6)
        #expect(result.stderr == "error: the back-end did not accept migration state transfer: SET_DEVICE_STATE_FD answered 0x101 (error code 1)\n")
    }

    @Test func backEndWithoutDeviceStateIsExitFive() throws {
        let server = try serve(["--no-device-state"])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--socket", socket, realState])
        #expect(result.status == 5)
        #expect(result.stderr == "error: the back-end does not support migration state transfer: no VHOST_USER_PROTOCOL_F_DEVICE_STATE (protocol features 0xa00b)\n")
    }

    @Test func backEndHangingUpMidTransferIsExitSeven() throws {
        // 8 MiB of payload cannot all sit in the pipe when the back-end stops reading.
        let payload = path("payload")
        FileManager.default.createFile(atPath: payload, contents: Data(repeating: 0x5A, count: 8 << 20))
        #expect(try StatetoolRunner.run(["frame", "--chunk-size", "64K", payload, "-o", path("big.state")]).status == 0)
        let server = try serve(["--hang-up-after", "1M"])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--socket", socket, path("big.state")])
        #expect(result.status == 7)
        #expect(result.stderr.hasPrefix("error: the back-end closed the transfer pipe after "))
    }

    @Test func missingSocketIsExitFour() throws {
        let result = try StatetoolRunner.run(["replay", "--socket", path("nothing.sock"), realState])
        #expect(result.status == 4)
        #expect(result.stderr == "error: no socket at \(path("nothing.sock"))\n")
    }

    @Test func notASocketAndNobodyListeningAreExitFour() throws {
        FileManager.default.createFile(atPath: path("plain"), contents: Data())
        let plain = try StatetoolRunner.run(["replay", "--socket", path("plain"), realState])
        #expect(plain.status == 4)
        #expect(plain.stderr == "error: \(path("plain")) is not a socket\n")
        // A socket file left behind by a back-end that is gone.
        let stale = try pythonPeer("import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])")
        stale.waitUntilExit()
        let refused = try StatetoolRunner.run(["replay", "--socket", socket, realState])
        #expect(refused.status == 4)
        #expect(refused.stderr == "error: connection refused at \(socket): nothing is listening there\n")
    }

    @Test func malformedReplyIsAProtocolErrorExitNine() throws {
        // Answers GET_FEATURES with flags 0x1 (no REPLY bit), as a broken back-end might.
        let peer = try pythonPeer("""
            import socket,struct,sys,time
            s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); c,_=s.accept()
            c.recv(12); c.sendall(struct.pack('<IIIQ', 1, 1, 8, 1 << 30)); time.sleep(5)
            """)
        defer { kill(peer.processIdentifier, SIGKILL); peer.waitUntilExit() }
        let result = try StatetoolRunner.run(["replay", "--timeout", "3", "--socket", socket, realState])
        #expect(result.status == 9)
        #expect(result.stderr == "error: protocol error: reply to GET_FEATURES (1): flags 0x1 instead of 0x5 (version 1 + reply)\n")
    }

    /// Runs `script` with the socket path as its argument and waits for the socket.
    private func pythonPeer(_ script: String) throws -> Process {
        try Peer.start("/usr/bin/python3", ["-c", script, socket], log: nil, waitingFor: socket)
    }

    @Test func silentBackEndTimesOut() throws {
        // A peer that accepts and never answers.
        let peer = try pythonPeer("import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); c,_=s.accept(); time.sleep(20)")
        defer { kill(peer.processIdentifier, SIGKILL); peer.waitUntilExit() }
        let started = Date()
        let result = try StatetoolRunner.run(["replay", "--timeout", "1", "--socket", socket, realState])
        #expect(result.status == 8)
        #expect(result.stderr == "error: timed out after 1 s waiting for the reply to GET_FEATURES (1)\n")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func brokenFileIsRefusedBeforeConnecting() throws {
        let result = try StatetoolRunner.run(["replay", "--socket", path("nothing.sock"), "Samples/truncated-length.state"])
        #expect(result.status == 1)
        #expect(result.stderr.hasSuffix("refusing a broken stream: nothing was sent; --force sends its valid prefix\n"))
    }

    @Test func brokenPipeInputAbortsWithoutCheck() throws {
        let server = try serve(["--record", path("rec")])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--socket", socket, "-"], stdin: try bytes(StatetoolRunner.sample("truncated-chunk.state")))
        #expect(result.status == 1)
        // The 4 GiB chunk is longer than the reader's buffer, so its 10 bytes went out as read.
        #expect(result.stderr.hasSuffix("-: transfer aborted after 4106 payload bytes, as QEMU aborts: pipe closed, no CHECK_DEVICE_STATE sent\n"))
    }

    @Test(arguments: [false, true])
    func captureFramesWhatTheBackEndSaves(ownDescriptor: Bool) throws {
        let server = try serve(["--state", realState] + (ownDescriptor ? ["--own-fd"] : []))
        defer { finish(server) }
        let result = try StatetoolRunner.run(["capture", "--socket", socket, "-o", path("cap.state")])
        #expect(result.status == 0)
        let inspect = try StatetoolRunner.run(["inspect", "--json", path("cap.state")])
        let object = try inspect.jsonObject()
        #expect(object["valid"] as? Bool == true)
        #expect(object["payloadSHA256"] as? String == realPayloadSHA256)
    }

    @Test func captureOfAFailedSaveWritesNothing() throws {
        let server = try serve(["--state", realState, "--fail-check"])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["capture", "--socket", socket, "-o", path("cap.state")])
        #expect(result.status == 3)
        #expect(!FileManager.default.fileExists(atPath: path("cap.state")))
    }

    @Test func largeStreamGoesThroughBothWaysIntact() throws {
        // 64 MiB of payload in QEMU's 64 KiB chunks: replayed (spliced from the file),
        // recorded by serve, served back and captured.
        var generator = SystemRandomNumberGenerator()
        let block = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        var payload = Data()
        for index in 0..<64 { payload.append(block); payload[payload.count - 1] = UInt8(index) }
        try payload.write(to: URL(fileURLWithPath: path("big.payload")))
        let digest = SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined()
        #expect(try StatetoolRunner.run(["frame", "--chunk-size", "64K", path("big.payload"), "-o", path("big.state")]).status == 0)

        let loading = try serve(["--expect-sha256", digest, "--record", path("rec"), "--record-format", "stream"])
        let replay = try StatetoolRunner.run(["replay", "--socket", socket, path("big.state")])
        finish(loading)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stdout.hasPrefix("sent 67108864 payload bytes in 1024 chunks in "))

        let saving = try serve(["--state", path("rec"), "--own-fd"])
        defer { finish(saving) }
        let capture = try StatetoolRunner.run(["capture", "--zstd", "--socket", socket, "-o", path("captured.zst")])
        #expect(capture.status == 0, "\(capture.stderr)")
        #expect(try StatetoolRunner.run(["payload", path("captured.zst"), "-o", path("captured.payload")]).status == 0)
        #expect(try bytes(path("captured.payload")) == payload)
    }

    @Test func forceSendsTheValidPrefixOfABrokenFile() throws {
        let server = try serve(["--record", path("rec")])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["replay", "--force", "--socket", socket, "Samples/missing-terminator.state"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("Samples/missing-terminator.state: --force: sending the valid prefix, 9380 payload bytes\n"))
        server.waitUntilExit()
        #expect(try bytes(path("rec")).count == 9380)
    }

    @Test func captureFromABackEndThatHangsUpIsNotKept() throws {
        let server = try serve(["--state", realState, "--hang-up-after", "100000"])
        defer { finish(server) }
        let result = try StatetoolRunner.run(["capture", "--socket", socket, "-o", path("cap.state")])
        #expect(result.status == 3)
        #expect(result.stderr.hasSuffix("the back-end reported a failed save (CHECK_DEVICE_STATE 1): no output written\n"))
        #expect(!FileManager.default.fileExists(atPath: path("cap.state")))
    }

    /// A long-running `serve` ends every session, accepted, rejected, refused or
    /// cut short, with the descriptors it had before it.
    @Test func serveLeaksNoDescriptorsAcrossSessions() throws {
        let server = try Peer.start(
            StatetoolRunner.executable.path, ["serve", "--socket", socket, "--state", realState, "--expect-sha256", realPayloadSHA256],
            log: nil, waitingFor: socket)
        defer { finish(server) }
        let descriptors = { () -> [String] in
            (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(server.processIdentifier)/fd").sorted()) ?? []
        }
        // The first session makes libdispatch create its timer descriptor, once
        // per process: the baseline is taken after it.
        #expect(try StatetoolRunner.run(["capture", "--socket", socket, "-o", path("warm-up.state")]).status == 0)
        Thread.sleep(forTimeInterval: 0.1)
        let baseline = descriptors()
        #expect(baseline.count >= 3)
        let sessions: [(arguments: [String], status: Int32)] = [
            (["replay", "--socket", socket, realState], 0),
            (["replay", "--socket", socket, StatetoolRunner.sample("good.state")], 3),
            (["capture", "--socket", socket, "-o", path("captured.state")], 0),
            (["replay", "--socket", socket, "--force", StatetoolRunner.sample("truncated-chunk.state")], 3),
            (["capture", "--socket", socket, "-o", path("captured2.state")], 0),
        ]
        for session in sessions {
            let result = try StatetoolRunner.run(session.arguments)
            #expect(result.status == session.status, "\(session.arguments): \(result.stderr)")
            var now = descriptors()
            for _ in 0..<100 where now != baseline {
                Thread.sleep(forTimeInterval: 0.01)
                now = descriptors()
            }
            #expect(now == baseline, "\(session.arguments) left descriptors open in serve")
        }
    }

    @Test func serveRemovesItsSocketOnSignal() throws {
        let process = try Peer.start(StatetoolRunner.executable.path, ["serve", "--socket", socket], log: nil, waitingFor: socket)
        #expect(FileManager.default.fileExists(atPath: socket))
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }
}

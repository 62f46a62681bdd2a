import Foundation
import StatetoolKit
import TestSupport
import Testing

/// Log lines of QEMU 10, QEMU 11.1, libvirt and virtiofsd 1.13 recognised,
/// and logs read from their ends for their last attempt.
@Suite struct LogAttemptTests {
    static func log(_ name: String) -> String { Repository.fixtures.appendingPathComponent("logs/\(name)").path }

    @Test func theAbortLogOfTheMissingDirectory() throws {
        let attempt = try LogAttempt.read(Self.log("s1-dst-fail-abort.virtiofsd.log"))
        #expect(attempt.firstLine == 2)
        #expect(attempt.startOffset == 161)
        #expect(attempt.sources == [.virtiofsd])
        #expect(attempt.lines.map(\.line) == [2, 4])
        #expect(attempt.lines.map(\.offset) == [161, 320])
        #expect(attempt.lines[1].message == .loadStopped(.openFailed(inode: 12, path: "/srv/share-broken/tree/d07", error: "No such file or directory (os error 2)")))
        #expect(attempt.lines[1].message.source == .virtiofsd)
        #expect(attempt.lines[1].text.hasSuffix("Migration failed: Failed to load state: Inode 12: Opening /srv/share-broken/tree/d07: No such file or directory (os error 2)"))
    }

    @Test func qemu10StandardError() throws {
        let attempt = try LogAttempt.read(Self.log("s1-dst-fail-abort.qemu-stderr.log"))
        #expect(attempt.firstLine == 1)
        #expect(attempt.lines.map(\.line) == [1, 3, 4])
        #expect(attempt.lines.map(\.offset) == [0, 251, 353])
        #expect(attempt.lines.map(\.message) == [
            .backEndRejectedState, .deviceLoadFailed(device: "0000:00:01.0/vhost-user-fs"), .migrationLoadFailed(reason: "Input/output error"),
        ])
    }

    @Test func qemu11Wordings() {
        #expect(LogMessage(line: "qemu-system-x86_64: VQ 0 vring.num 1024 exceeds allocated max 128") == .virtqueueTooLarge(queue: 0, size: 1024, maximum: 128))
        let reason = "Invalid argument: error while loading state for instance 0x0 of device '0000:00:01.0/vhost-user-fs': Failed to load element of type virtio for virtio"
        #expect(LogMessage(line: Substring("qemu-system-x86_64: load of migration failed: " + reason)) == .migrationLoadFailed(reason: reason))
        #expect(
            LogMessage(line: "2026-12-06T12:00:00.000000Z qemu-system-x86_64: Error loading back-end state of virtio-user-fs device /machine/peripheral-anon/device[0]/virtio-backend (tag: \"myfs\"): Back-end failed to process its internal state")
                == .backEndRejectedState)
        #expect(LogMessage(line: "qemu-system-x86_64: Failed to load vhost-user-fs-backend:back-end") == nil)
        // QEMU 10.0.2 loading into a back-end without DEVICE_STATE (statetool serve --no-device-state), measured.
        #expect(
            LogMessage(line: "qemu-system-x86_64: Back-end of virtio-user-fs device /machine/peripheral-anon/device[0]/virtio-backend (tag: \"myfs\") does not support migration through qemu")
                == .backEndLacksDeviceState)
    }

    @Test func virtiofsdReasons() {
        #expect(
            LoaderReason("Failed to load state: Inode 1 is not the same inode as in the migration source: File handle differs: b7 80 != c2 26")
                == .fileHandleDiffers(inode: 1))
        #expect(LoaderReason("Failed to load state: Inode 5398: Opening file handle: Operation not permitted (os error 1)") == .fileHandleOpenFailed(inode: 5398, error: "Operation not permitted (os error 1)"))
        #expect(LoaderReason("Failed to load state: Inode 5398: Opening file handle: Operation not permitted (os error 1)").errorNumber == 1)
        #expect(
            LoaderReason("Failed to load state: Opening inode 40 (tree/d01/s00/f) as handle 7: Is a directory (os error 21)")
                == .handleReopenFailed(handle: 7, inode: 40, path: "tree/d01/s00/f", error: "Is a directory (os error 21)"))
        #expect(LoaderReason("Failed to load state: Unresolved references between serialized inodes") == .unresolvedReferences)
        #expect(LoaderReason("Migration source wants announce-submounts enabled, but it is disabled on the destination") == .optionDisabled("announce-submounts"))
        #expect(LoaderReason("Migration source wants posix ACLs enabled, but it is disabled on the destination") == .optionDisabled("posix-acl"))
        #expect(LoaderReason("Failed to load state: Inode 19372: Opening /s/x: Too many open files in system (os error 23)").errorNumber == 23)
        // virtiofsd 1.13.2 with --rlimit-nofile=2000, the fixture's state (measured here).
        #expect(LoaderReason("Failed to load state: Inode 1384: Too many open files in system (os error 23)") == .inodeFailed(inode: 1384, error: "Too many open files in system (os error 23)"))
        #expect(
            LogMessage(line: "[T WARN  virtiofsd] No more file descriptors available to the guest (0 available out of 19390 initially), consider increasing the --rlimit-nofile value")
                == .descriptorsExhausted(available: 0, initially: 19390))
    }

    @Test func guestErrorLinesNameTheInodesAndTheirFirstReason() throws {
        let attempt = try LogAttempt.read(Self.log("s1-dst-fail-guesterror.virtiofsd.log"))
        let inodes = attempt.lines.compactMap { line -> UInt64? in
            if case .invalidInode(let id, _) = line.message { return id }
            return nil
        }
        let handles = attempt.lines.compactMap { line -> (UInt64, LoaderReason)? in
            if case .invalidHandle(let id, let reason) = line.message { return (id, reason) }
            return nil
        }
        #expect(inodes.count == 261)
        #expect(inodes.first == 12)
        #expect(handles.count == 10)
        #expect(handles[0].0 == 954)
        #expect(handles[0].1.root == .openFailed(inode: nil, path: "/srv/share-broken/tree/d07", error: "No such file or directory (os error 2)"))
        #expect(attempt.lines[1].line == 4)
    }

    /// A domain log with three starts, longer than a block: only the last start counts.
    @Test func aDomainLogIsReadFromItsLastStart() throws {
        try ScratchDirectory.using("log-attempt") { scratch in
            var text = ""
            for attempt in 0..<3 {
                text += "2026-12-06 12:0\(attempt):00.000+0000: starting up libvirt version: 9.0.0, qemu version: 10.0.2\n"
                text += "LC_ALL=C /usr/bin/qemu-system-x86_64 -name guest=vm \(String(repeating: "-x ", count: 10_000))\n"
                text += "2026-12-06T12:0\(attempt):01.000000Z qemu-system-x86_64: Back-end failed to process its internal state\n"
                text += "2026-12-06T12:0\(attempt):01.000000Z qemu-system-x86_64: load of migration failed: Input/output error\n"
                text += "2026-12-06 12:0\(attempt):02.000+0000: shutting down, reason=failed\n"
            }
            try text.write(toFile: scratch.path("vm.log"), atomically: true, encoding: .utf8)
            let attempt = try LogAttempt.read(scratch.path("vm.log"))
            #expect(attempt.firstLine == 11)
            #expect(attempt.lines.map(\.line) == [11, 13, 14])
            let start = text.utf8.count - text.components(separatedBy: "\n").suffix(6).joined(separator: "\n").utf8.count
            #expect(attempt.startOffset == UInt64(start))
            #expect(attempt.lines[0].offset == UInt64(start))
            #expect(attempt.lines[2].text == "2026-12-06T12:02:01.000000Z qemu-system-x86_64: load of migration failed: Input/output error")
            #expect(attempt.sources == [.libvirt, .qemu])
        }
    }

    @Test func anUnreadableLogIsAFailure() {
        #expect(throws: LogAttempt.Failure.self) { try LogAttempt.read("/nonexistent/vm.log") }
    }

    @Test func domainXMLShares() {
        let xml = """
            <domain type='qemu'><devices>
            <filesystem type='mount' accessmode='passthrough'>
              <driver type='virtiofs' queue='1024'/>
              <source dir='/srv/a&amp;b'/>
              <target dir='myfs'/>
              <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
            </filesystem>
            <filesystem type='mount'><driver type='path'/><source dir='/srv/9p'/></filesystem>
            </devices></domain>
            """
        let shares = DomainShare.shares(in: xml)
        #expect(shares == [DomainShare(directory: "/srv/a&b", tag: "myfs", pciAddress: "0000:00:01.0", queueSize: 1024)])
        #expect(DomainShare.share(for: "0000:00:01.0/vhost-user-fs", in: shares)?.directory == "/srv/a&b")
        #expect(Diagnosis.fixedName("/x/s1-A-running.mig.zst") == "/x/s1-A-running.fixed.mig.zst")
        #expect(Diagnosis.fixedName("guest") == "guest.fixed")
        #expect(ShareAssignment(parsing: "0000:00:01.0/vhost-user-fs=/srv/share") == ShareAssignment(device: "0000:00:01.0/vhost-user-fs", directory: "/srv/share"))
        #expect(ShareAssignment(parsing: "/srv/a=b") == ShareAssignment(device: nil, directory: "/srv/a=b"))
    }
}

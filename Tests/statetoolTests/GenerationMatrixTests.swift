import Foundation
import TestSupport
import Testing

/// States written by each generation of the real peers, read, preflighted, retargeted and
/// restored by each generation (`PeerGeneration`): old to new and new to old, in each
/// virtiofsd migration mode, with the restored guest reading its held files.
@Suite(.serialized) struct GenerationMatrixTests {
    /// A source and a destination generation: the same one twice, or across.
    struct Crossing: Sendable, CustomTestStringConvertible {
        let source: PeerGeneration
        let destination: PeerGeneration
        var testDescription: String { "\(source.name) -> \(destination.name)" }
    }

    static let crossings = PeerGeneration.all.flatMap { source in PeerGeneration.all.map { Crossing(source: source, destination: $0) } }

    /// Both virtiofsd migration modes: paths found in /proc/self/fd, or file handles.
    static let modes = ["find-paths", "file-handles"]

    @Test(arguments: crossings, modes)
    func aFreshGuestRestoresAcrossGenerationsAndReadsItsHeldFiles(crossing: Crossing, mode: String) throws {
        try crossing.source.require()
        try crossing.destination.require()
        let scratch = try ScratchDirectory("matrix")
        let guest = try FreshGuest(in: scratch)
        try guest.boot(on: crossing.source, virtiofsdOptions: ["--migration-mode=\(mode)"])
        let file = scratch.path("vm.mig")
        try guest.save(to: file)

        let listed = try StatetoolRunner.run(["migration", "ls", file])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("  virtiofsd: state V2: "), "\(listed.stdout)")
        let checked = try StatetoolRunner.run(["preflight", file, "--shared-dir", guest.share])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")

        // A file-handles state needs CAP_DAC_READ_SEARCH on the destination, which
        // virtiofsd 1.13 keeps only when told (virtiofsd 1.14 loads it as it is).
        let options = mode == "file-handles" && crossing.destination == .current ? ["--modcaps=+dac_read_search"] : []
        let restored = try guest.restore(file, on: crossing.destination, virtiofsdOptions: options)
        #expect(restored, "QEMU: \(guest.log("qemu.log")); virtiofsd: \(guest.log("vfsd.log"))")
        if restored {
            #expect(try guest.readHeldFiles() == FreshGuest.allRead)
        }
    }

    /// virtiofsd 1.13 drops CAP_DAC_READ_SEARCH unless `--modcaps=+dac_read_search` keeps
    /// it, and then cannot open a file-handles state's handles: the load fails, whichever
    /// generation wrote the state.
    @Test(arguments: PeerGeneration.all)
    func aFileHandlesStateNeedsDACReadSearchOnVirtiofsd113(source: PeerGeneration) throws {
        try source.require()
        try PeerGeneration.current.require()
        let scratch = try ScratchDirectory("matrix")
        let guest = try FreshGuest(in: scratch)
        try guest.boot(on: source, virtiofsdOptions: ["--migration-mode=file-handles"])
        try guest.save(to: scratch.path("vm.mig"))
        #expect(!(try guest.restore(scratch.path("vm.mig"), on: .current)))
        #expect(guest.log("vfsd.log").contains("Migration failed: Failed to load state: Inode "), "\(guest.log("vfsd.log"))")
        #expect(guest.log("vfsd.log").contains(": Opening file handle: Operation not permitted (os error 1)"), "\(guest.log("vfsd.log"))")
    }

    /// The destination lost doomed/: the file as it is fails on every generation, and
    /// `retarget --drop-missing` makes one that every generation restores, the guest
    /// reading its other files on.
    @Test(arguments: crossings)
    func retargetedStatesRestoreAcrossGenerations(crossing: Crossing) throws {
        try crossing.source.require()
        try crossing.destination.require()
        let scratch = try ScratchDirectory("matrix")
        let guest = try FreshGuest(in: scratch)
        try guest.boot(on: crossing.source)
        let file = scratch.path("vm.mig")
        try guest.save(to: file)
        try FileManager.default.removeItem(atPath: guest.share + "/doomed")

        let checked = try StatetoolRunner.run(["preflight", file, "--shared-dir", guest.share])
        #expect(checked.status == 1, "\(checked.stdout)\(checked.stderr)")
        #expect(!(try guest.restore(file, on: crossing.destination)))
        #expect(guest.log("vfsd.log").contains("doomed: No such file or directory"), "\(guest.log("vfsd.log"))")

        let retargeted = try StatetoolRunner.run(["retarget", file, "--shared-dir", guest.share, "--drop-missing", "-o", scratch.path("fixed.mig")])
        #expect(retargeted.status == 0, "\(retargeted.stderr)")
        // The inode ids follow the guest's lookups, in the order the share's directories list.
        #expect(
            retargeted.stdout.contains(/\ndropped doomed and the 1 inode under it, 1 open handle \(inode \d+: Opening doomed: No such file or directory\)\n/),
            "\(retargeted.stdout)")
        let restored = try guest.restore(scratch.path("fixed.mig"), on: crossing.destination)
        #expect(restored, "QEMU: \(guest.log("qemu.log")); virtiofsd: \(guest.log("vfsd.log"))")
        if restored {
            #expect(try guest.readHeldFiles() == ["GUEST: fd 3: alpha", "GUEST: fd 4: beta", "GUEST: fd 5 failed: cat: read error: Bad file descriptor"])
        }
    }
}

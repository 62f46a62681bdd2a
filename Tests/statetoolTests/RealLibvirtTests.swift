import Foundation
import TestSupport
import Testing

/// Save images written by real libvirt (9.0 running QEMU 10.0 and virtiofsd 1.13;
/// 11.3; 12 running QEMU 11.1 and virtiofsd 1.14) with the test guest, read,
/// checked, retargeted and restored, by their own generation and across.
@Suite(.serialized) struct RealLibvirtTests {
    /// The JSON `migration ls --json` prints, as a dictionary.
    private func list(_ image: String) throws -> [String: Any] {
        let listed = try StatetoolRunner.run(["migration", "ls", "--json", image])
        #expect(listed.status == 0, "\(listed.stderr)")
        return try #require(JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])
    }

    /// Removes doomed/, checks that the image is refused by a restore as it
    /// is (when `control`), retargets it, restores the result and checks that
    /// the guest runs on: its two other held files read, the doomed one fails.
    private func retargetAndRestore(_ lab: LibvirtLab, image: String, control: Bool) throws {
        try lab.removeDoomedDirectory()
        let preflight = try StatetoolRunner.run(["preflight", image, "--shared-dir", lab.share])
        #expect(preflight.status == 1)
        #expect(preflight.stdout.contains("doomed: Opening doomed: No such file or directory"), "\(preflight.stdout)")

        if control {
            let refused = try lab.restore(image, log: "control.log")
            #expect(refused.status != 0, "the original image restored onto a share without doomed/")
            #expect(refused.stderr.contains("load of migration failed"), "\(refused.stderr)")
            let log = try String(contentsOfFile: lab.path("control.log"), encoding: .utf8)
            #expect(log.contains("Opening \(lab.share)/doomed: No such file or directory"), "\(log)")
        }

        let fixed = lab.path("fixed.save")
        let retargeted = try StatetoolRunner.run(["retarget", image, "--shared-dir", lab.share, "--drop-missing", "-o", fixed])
        #expect(retargeted.status == 0, "\(retargeted.stderr)")
        #expect(retargeted.stdout.contains("wrote \(fixed): libvirt save image"), "\(retargeted.stdout)")
        let restored = try lab.restore(fixed, log: "restore.log")
        #expect(restored.status == 0, "virsh restore of the retargeted image failed: \(restored.stderr)")
        let read = try lab.readHeldFiles()
        let console = try lab.console()
        #expect(read == LibvirtLab.heldFilesWithoutDoomed, "\(console)")
    }

    @Test(arguments: PeerGeneration.all)
    func rawSaveImageIsReadRetargetedAndRestored(generation: PeerGeneration) throws {
        let lab = try LibvirtLab(generation: generation)
        defer { lab.close() }
        try lab.boot()
        let image = lab.path("guest.save")
        try lab.save(to: image)

        // The container: libvirt's header, the domain, where QEMU's stream starts.
        let json = try list(image)
        let libvirt = try #require(json["libvirt"] as? [String: Any])
        #expect(libvirt["format"] as? String == "raw")
        #expect(libvirt["headerVersion"] as? Int == 2)
        #expect(libvirt["wasRunning"] as? Bool == true)
        #expect(libvirt["domainName"] as? String == LibvirtLab.domain)
        let dataLength = try #require(libvirt["dataLength"] as? Int)
        #expect(libvirt["streamOffset"] as? Int == 92 + dataLength)
        #expect(json["valid"] as? Bool == true)
        let states = try #require(json["backEndStates"] as? [[String: Any]])
        #expect(states.count == 1)
        #expect(states.first?["device"] as? String == "0000:00:09.0/vhost-user-fs")
        // Offsets are the image's: the stream's first chunk length sits there in the file.
        let streamOffset = try #require(states.first?["streamOffset"] as? Int)
        let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: image))
        try file.seek(toOffset: UInt64(streamOffset))
        let state = try #require(try file.read(upToCount: 4))
        try file.close()
        #expect(state != Data([0, 0, 0, 0]))

        let xml = try StatetoolRunner.run(["libvirt", "xml", image])
        #expect(xml.status == 0)
        #expect(xml.stdout.contains("<name>\(LibvirtLab.domain)</name>"))
        #expect(xml.stdout.contains("vhost-user-fs-pci,id=fs0"))
        let cookie = try StatetoolRunner.run(["libvirt", "xml", "--cookie", image])
        #expect(cookie.stdout.hasPrefix("<cookie>"), "\(cookie.stdout)")

        // The state decodes: the guest's tree and its three held files.
        let extracted = try StatetoolRunner.run(["extract", image, "-o", lab.path("guest.state")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        let inspected = try StatetoolRunner.run(["inspect", "--decode", lab.path("guest.state")])
        #expect(inspected.stdout.contains("3 open handles"), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("doomed/c.txt"))

        // Replaced by itself, the image comes back byte for byte.
        let same = lab.path("same.save")
        let replaced = try StatetoolRunner.run(["migration", "replace", image, "--state", lab.path("guest.state"), "-o", same])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: same)) == Data(contentsOf: URL(fileURLWithPath: image)))

        try retargetAndRestore(lab, image: image, control: true)
    }

    /// gzip here; bzip2 and xz (as slow in libvirt's compressor as they are
    /// here: 20 s for xz) are checked on images built by their own tools, in
    /// LibvirtImageCommandTests.
    @Test(arguments: [("gzip", "gzip")])
    func compressedSaveImageIsRetargetedInItsOwnFormat(format: String, tool: String) throws {
        let lab = try LibvirtLab(format: format)
        defer { lab.close() }
        try lab.boot()
        let image = lab.path("guest.save")
        try lab.save(to: image)

        let json = try list(image)
        #expect(json["compression"] as? String == format)
        let libvirt = try #require(json["libvirt"] as? [String: Any])
        #expect(libvirt["format"] as? String == format)
        #expect((json["backEndStates"] as? [[String: Any]])?.first?["valid"] as? Bool == true)

        try retargetAndRestore(lab, image: image, control: false)

        // What statetool wrote: the same header and XML, the stream in the image's own format.
        let streamOffset = try #require(libvirt["streamOffset"] as? Int)
        let tested = try ProcessRunner.run("/bin/sh", ["-c", "tail -c +\(streamOffset + 1) \"$1\" | \(tool) -t", "sh", lab.path("fixed.save")])
        #expect(tested.status == 0, "\(tool) -t refused the retargeted image's stream: \(tested.stderr)")
        let header = try ProcessRunner.run("/bin/sh", ["-c", "cmp -n \(streamOffset) \"$1\" \"$2\"", "sh", image, lab.path("fixed.save")])
        #expect(header.status == 0, "the header or XML changed: \(header.stdout)")
    }

    /// libvirt 11.3's and 12's sparse images: QEMU's mapped-ram inside libvirt's
    /// header, its offsets the image's. Read in place, retargeted with the
    /// holes kept, restored by the libvirt that wrote them.
    @Test(arguments: [false, true])
    func sparseSaveImageIsRetargetedWithItsHoles(libvirt12: Bool) throws {
        let lab = try libvirt12 ? LibvirtLab(generation: .today) : LibvirtLab(libvirt11: true)
        defer { lab.close() }
        try lab.boot()
        let image = lab.path("guest.save")
        try lab.save(to: image, options: ["--image-format", "sparse"])

        let json = try list(image)
        let libvirt = try #require(json["libvirt"] as? [String: Any])
        #expect(libvirt["format"] as? String == "sparse")
        #expect((json["configuration"] as? [String: Any])?["capabilities"] as? [String] == ["mapped-ram"])
        #expect(json["valid"] as? Bool == true)

        try retargetAndRestore(lab, image: image, control: true)

        func usage(_ path: String) throws -> (allocated: Int, length: Int) {
            var status = stat()
            try #require(stat(path, &status) == 0)
            return (Int(status.st_blocks) * 512, Int(status.st_size))
        }
        let original = try usage(image), fixed = try usage(lab.path("fixed.save"))
        #expect(original.allocated < original.length / 2, "libvirt's image is not sparse: \(original)")
        #expect(fixed.allocated <= original.allocated + (64 << 10), "the retargeted image lost its holes: \(fixed) against \(original)")
        let streamOffset = try #require(libvirt["streamOffset"] as? Int)
        let header = try ProcessRunner.run("/bin/sh", ["-c", "cmp -n \(streamOffset) \"$1\" \"$2\"", "sh", image, lab.path("fixed.save")])
        #expect(header.status == 0, "the header or XML changed: \(header.stdout)")
    }

    /// Fresh real states in each of virtiofsd's migration modes, decoded and
    /// restored unchanged.
    @Test(arguments: PeerGeneration.all, [["--migration-mode=find-paths"], ["--migration-mode=file-handles"], ["--migration-verify-handles"]])
    func freshStatesOfEachMigrationModeDecodeAndRestore(generation: PeerGeneration, options: [String]) throws {
        let lab = try LibvirtLab(generation: generation)
        defer { lab.close() }
        try lab.boot(virtiofsdOptions: options)
        let image = lab.path("guest.save")
        try lab.save(to: image)

        let extracted = try StatetoolRunner.run(["extract", image, "-o", lab.path("guest.state")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        let inspected = try StatetoolRunner.run(["inspect", "--json", lab.path("guest.state")])
        #expect(inspected.status == 0, "\(inspected.stderr)")
        let object = try #require(JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any])
        let virtiofsd = try #require(object["virtiofsd"] as? [String: Any], "\(inspected.stdout)")
        let handles = try #require(virtiofsd["handles"] as? [[String: Any]])
        let inodes = try #require(virtiofsd["inodes"] as? [[String: Any]])
        let paths = Set(inodes.compactMap { $0["path"] as? String })
        let withFileHandles = inodes.filter { $0["fileHandle"] is String }
        #expect(handles.count == 3)
        var destinationOptions: [String] = []
        switch options {
        case ["--migration-mode=file-handles"]:
            // Inodes travel as file handles, without paths; the destination must open them.
            #expect(inodes.filter { $0["kind"] as? String == "file-handle" }.count == inodes.count - 1, "\(inodes)")
            #expect(paths == ["."])
            destinationOptions = ["--modcaps=+dac_read_search"]
        case ["--migration-verify-handles"]:
            // Paths, each with the file handle the destination checks it against.
            #expect(paths.isSuperset(of: ["keep/a.txt", "doomed/c.txt", "tree/one/x.txt", "tree/two/y.txt"]), "\(paths)")
            #expect(withFileHandles.count == inodes.count)
        default:
            #expect(paths.isSuperset(of: ["keep/a.txt", "doomed/c.txt", "tree/one/x.txt", "tree/two/y.txt"]), "\(paths)")
            #expect(Set(handles.compactMap { $0["path"] as? String }) == ["keep/a.txt", "keep/b.txt", "doomed/c.txt"])
            #expect(withFileHandles.isEmpty)
        }
        let preflight = try StatetoolRunner.run(["preflight", image, "--shared-dir", lab.share])
        #expect(preflight.status == 0, "\(preflight.stdout)\(preflight.stderr)")

        let restored = try lab.restore(image, log: "restore.log", virtiofsdOptions: destinationOptions)
        #expect(restored.status == 0, "\(restored.stderr)")
        let read = try lab.readHeldFiles()
        let console = try lab.console()
        #expect(read == ["GUEST: fd 3: alpha", "GUEST: fd 4: beta", "GUEST: fd 5: gamma"], "\(console)")
    }

    /// An image saved by one generation's libvirt, QEMU and virtiofsd restores under the
    /// other's: as it is, and retargeted onto the share without doomed/.
    @Test(arguments: GenerationMatrixTests.crossings.filter { $0.source != $0.destination })
    func saveImagesRestoreAcrossGenerations(crossing: GenerationMatrixTests.Crossing) throws {
        let lab = try LibvirtLab(generation: crossing.source)
        defer { lab.close() }
        try lab.boot()
        let image = lab.path("guest.save")
        try lab.save(to: image)
        try lab.switchDaemon(to: crossing.destination)

        let restored = try lab.restore(image, log: "restore.log")
        #expect(restored.status == 0, "virsh restore failed: \(restored.stderr)")
        let read = try lab.readHeldFiles()
        let console = try lab.console()
        #expect(read == ["GUEST: fd 3: alpha", "GUEST: fd 4: beta", "GUEST: fd 5: gamma"], "\(console)")
        _ = try lab.virsh(["destroy", LibvirtLab.domain])
        try FileManager.default.removeItem(atPath: lab.share + "/go")

        try retargetAndRestore(lab, image: image, control: true)
    }
}

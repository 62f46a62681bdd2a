import Foundation
import TestSupport
import Testing

/// A private libvirtd (Tests/Peers/libvirt/private-libvirtd) with the test
/// guest under it: Debian's kernel and busybox from an initramfs that mounts a
/// vhost-user-fs device served by a real virtiofsd, looks up its share and
/// holds keep/a.txt, keep/b.txt and doomed/c.txt open (Tests/Peers/libvirt/guest-init).
///
/// Each lab has its own scratch folder, daemon and share; `close()` stops them.
final class LibvirtLab {
    static let domain = "statetool-guest"
    static let privateLibvirtd = Repository.root.appendingPathComponent("Tests/Peers/libvirt/private-libvirtd").path
    static let guest = Repository.root.appendingPathComponent(".build-peers/guest")

    /// libvirt 11.3, unpacked by Scripts/install-peers: for sparse images.
    static let libvirt11 = Repository.root.appendingPathComponent(".build-peers/libvirt-11")

    let scratch: URL
    /// virsh's connection to the daemon running now.
    private(set) var connection: String
    /// The virsh that matches the daemon.
    private(set) var virshPath: String
    /// The generation whose libvirt, QEMU and virtiofsd run the guest now.
    private(set) var generation: PeerGeneration
    private var daemonScript: String
    private var daemonDirectory: String
    private let format: String
    private var virtiofsd: Process?
    /// Whether libvirt starts virtiofsd itself from a virtiofs `<filesystem>`
    /// (the domain is then defined, persistent: `virsh managedsave` takes it).
    let libvirtRunsVirtiofsd: Bool

    /// Starts a daemon whose `virsh save` writes `format` (qemu.conf's
    /// save_image_format) and makes the share: libvirt 9.0's (the `current`
    /// generation), with `libvirt11` the unpacked 11.3, or with `generation`
    /// `.today` the sid root's libvirt 12, whose QEMU 11.1 and virtiofsd 1.14 then
    /// run the guest. With `libvirtRunsVirtiofsd`, libvirt starts virtiofsd itself.
    init(format: String = "raw", libvirt11: Bool = false, generation: PeerGeneration = .current, libvirtRunsVirtiofsd: Bool = false) throws {
        self.libvirtRunsVirtiofsd = libvirtRunsVirtiofsd
        for file in ["vmlinuz", "initrd.gz"] {
            try #require(
                FileManager.default.fileExists(atPath: Self.guest.appendingPathComponent(file).path),
                "the test guest's \(file) is missing: run Scripts/install-peers")
        }
        try generation.require()
        self.format = format
        self.generation = generation
        scratch = URL(fileURLWithPath: "/tmp/statetool-libvirt-\(UUID().uuidString.prefix(8))")
        connection = ""
        virshPath = ""
        daemonScript = ""
        daemonDirectory = ""
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        // Daemons of tests that crashed, or of an earlier run, are ended first.
        _ = try ProcessRunner.run(Self.privateLibvirtd, ["reap"])
        try startDaemon(generation, libvirt11: libvirt11)
        try makeShare()
    }

    /// Starts a private daemon of `generation` in its own folder of the scratch.
    private func startDaemon(_ generation: PeerGeneration, libvirt11: Bool = false) throws {
        self.generation = generation
        virshPath = libvirt11 ? Self.libvirt11.appendingPathComponent("bin/virsh-wrapper").path : generation.virsh
        let daemon = libvirt11 ? Self.libvirt11.appendingPathComponent("usr/sbin/libvirtd").path : generation.libvirtd
        for tool in [daemon, virshPath] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: run Scripts/install-peers")
        }
        daemonScript = generation.privateLibvirtd
        daemonDirectory = path("daemon-\(generation.name)")
        connection = "qemu:///system?socket=\(daemonDirectory)/run/libvirt-sock"
        // The reaper ends a daemon whose owner is gone: this test process owns this one. The
        // owner is written before the daemon starts, or another lab's reaper, running in
        // parallel, takes the new daemon for a leftover and ends it while it comes up.
        try FileManager.default.createDirectory(atPath: daemonDirectory, withIntermediateDirectories: true)
        try String(getpid()).write(toFile: daemonDirectory + "/owner", atomically: true, encoding: .utf8)
        let started = try ProcessRunner.run(
            "/usr/bin/env", (libvirt11 ? ["LIBVIRT_ROOT=\(Self.libvirt11.path)"] : []) + [daemonScript, "start", daemonDirectory, format])
        try #require(started.status == 0, "the private libvirtd did not start: \(started.stderr)")
    }

    /// Stops the daemon running now; true when it is gone.
    private func stopDaemon() -> Bool {
        let pid = daemonPID
        let stopped = try? ProcessRunner.run(daemonScript, ["stop", daemonDirectory])
        #expect(stopped?.status == 0, "the private libvirtd did not stop: \(stopped?.stderr ?? "")")
        if let pid {
            #expect(kill(pid, 0) != 0, "libvirtd \(pid) is still running after its test")
            return kill(pid, 0) != 0
        }
        return true
    }

    /// Stops the guest and the daemon and starts a daemon of `generation` on the same
    /// share, for a restore across generations (an image keeps the paths it names).
    func switchDaemon(to generation: PeerGeneration) throws {
        if let virtiofsd { RealPeers.stop(virtiofsd) }
        virtiofsd = nil
        try #require(stopDaemon())
        try generation.require()
        try startDaemon(generation)
    }

    /// `name` in the running daemon's folder, where its `/etc/libvirt`, `/run/libvirt`,
    /// `/var/lib/libvirt` (`lib`) and `/var/log/libvirt` (`log`) are.
    func daemonPath(_ name: String) -> String { daemonDirectory + "/" + name }

    /// The daemon's process id, from its pid file.
    private var daemonPID: pid_t? {
        (try? String(contentsOfFile: daemonDirectory + "/libvirtd.pid", encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Stops the guest, the daemon and virtiofsd, and checks that the daemon is gone.
    func close() {
        if let virtiofsd { RealPeers.stop(virtiofsd) }
        _ = stopDaemon()
        try? FileManager.default.removeItem(at: scratch)
    }

    func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }

    var share: String { path("share") }

    /// keep/a.txt, keep/b.txt, doomed/c.txt (held open by the guest) and a small tree.
    private func makeShare() throws {
        let files: [(String, String)] = [
            ("keep/a.txt", "alpha\n"), ("keep/b.txt", "beta\n"), ("doomed/c.txt", "gamma\n"),
            ("tree/one/x.txt", "x\n"), ("tree/two/y.txt", "y\n"),
        ]
        for (name, content) in files {
            let url = URL(fileURLWithPath: share).appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
    }

    /// Removes doomed/ from the share, as a destination that lost a directory.
    func removeDoomedDirectory() throws {
        try FileManager.default.removeItem(atPath: share + "/doomed")
    }

    /// virsh against the private daemon.
    func virsh(_ arguments: [String]) throws -> ProcessRunner.Result {
        try ProcessRunner.run(virshPath, ["-c", connection] + arguments)
    }

    /// Starts a fresh virtiofsd on the share (it exits whenever QEMU disconnects).
    func startVirtiofsd(options: [String] = [], log: String = "virtiofsd.log") throws {
        if let virtiofsd { RealPeers.stop(virtiofsd) }
        try? FileManager.default.removeItem(atPath: path("vfsd.sock"))
        virtiofsd = try generation.startVirtiofsd(sharedDirectory: share, socket: path("vfsd.sock"), log: path(log), options: options)
    }

    /// The domain XML: TCG, memfd shared memory, the guest kernel, the serial
    /// console into console.log, the vhost-user-fs device by qemu:commandline.
    private var domainXML: String {
        """
        <domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
          <name>\(Self.domain)</name>
          <memory unit='MiB'>128</memory>
          <vcpu>1</vcpu>
          <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
          <os>
            <type arch='x86_64' machine='\(PeerGeneration.machine)'>hvm</type>
            <kernel>\(Self.guest.appendingPathComponent("vmlinuz").path)</kernel>
            <initrd>\(Self.guest.appendingPathComponent("initrd.gz").path)</initrd>
            <cmdline>console=ttyS0 quiet init_on_free=1</cmdline>
          </os>
          <features><acpi/></features>
          <devices>
            <serial type='file'><source path='\(path("console.log"))' append='on'/><target port='0'/></serial>
            <memballoon model='none'/>
            \(libvirtRunsVirtiofsd ? filesystemXML : "")
          </devices>
          \(libvirtRunsVirtiofsd ? "" : commandLineXML)
        </domain>
        """
    }

    /// The vhost-user-fs device by qemu:commandline, on the test's own virtiofsd.
    private var commandLineXML: String {
        """
          <qemu:commandline>
            <qemu:arg value='-chardev'/><qemu:arg value='socket,id=char0,path=\(path("vfsd.sock"))'/>
            <qemu:arg value='-device'/><qemu:arg value='vhost-user-fs-pci,id=fs0,chardev=char0,tag=myfs,bus=pcie.0,addr=0x9'/>
          </qemu:commandline>
        """
    }

    /// The virtiofs `<filesystem>` libvirt serves the share with: virtiofsd
    /// through a wrapper that adds `--sandbox=none` (the lab's virtiofsd runs as
    /// root without namespaces), on the root bus at slot 9.
    private var filesystemXML: String {
        """
        <filesystem type='mount' accessmode='passthrough'>
          <driver type='virtiofs'/>
          <binary path='\(path("virtiofsd-for-libvirt"))'/>
          <source dir='\(share)'/>
          <target dir='myfs'/>
          <address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/>
        </filesystem>
        """
    }

    /// Starts the guest on a fresh virtiofsd and waits until it holds its files open.
    func boot(virtiofsdOptions: [String] = []) throws {
        try Data(domainXML.utf8).write(to: URL(fileURLWithPath: path("domain.xml")))
        if libvirtRunsVirtiofsd {
            try "#!/bin/sh\nexec \(generation.virtiofsd) \"$@\" --sandbox=none \(virtiofsdOptions.joined(separator: " "))\n"
                .write(toFile: path("virtiofsd-for-libvirt"), atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path("virtiofsd-for-libvirt"))
            let defined = try virsh(["define", path("domain.xml")])
            try #require(defined.status == 0, "virsh define failed: \(defined.stderr)")
            let started = try virsh(["start", Self.domain])
            try #require(started.status == 0, "virsh start failed: \(started.stderr)")
        } else {
            try startVirtiofsd(options: virtiofsdOptions)
            let created = try virsh(["create", path("domain.xml")])
            try #require(created.status == 0, "virsh create failed: \(created.stderr)")
        }
        try waitForConsole("GUEST: ready")
    }

    /// `virsh start` of the defined domain: from its managed-save image when
    /// there is one; the console starts afresh.
    func start() throws -> ProcessRunner.Result {
        try Data().write(to: URL(fileURLWithPath: path("console.log")))
        return try virsh(["start", Self.domain])
    }

    /// `virsh save` to `image` (with `options`, e.g. `--image-format sparse`).
    func save(to image: String, options: [String] = []) throws {
        let saved = try virsh(["save", Self.domain, image] + options)
        try #require(saved.status == 0, "virsh save failed: \(saved.stderr)")
    }

    /// `virsh restore` of `image` on a fresh virtiofsd; the console starts afresh.
    func restore(_ image: String, log: String, virtiofsdOptions: [String] = []) throws -> ProcessRunner.Result {
        try startVirtiofsd(options: virtiofsdOptions, log: log)
        try Data().write(to: URL(fileURLWithPath: path("console.log")))
        return try virsh(["restore", image])
    }

    /// What the guest reads through its held files once doomed/ is gone and
    /// the state was retargeted: keep/a.txt, keep/b.txt, and EBADF on doomed/c.txt.
    static let heldFilesWithoutDoomed = [
        "GUEST: fd 3: alpha",
        "GUEST: fd 4: beta",
        "GUEST: fd 5 failed: cat: read error: Bad file descriptor",
    ]

    /// Tells the restored guest to read its held files (it waits for `go` in
    /// the share) and returns its `GUEST:` lines about them.
    func readHeldFiles() throws -> [String] {
        try Data().write(to: URL(fileURLWithPath: share + "/go"))
        try waitForConsole("GUEST: done")
        return try console().split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasPrefix("GUEST: fd") }
    }

    func console() throws -> String {
        (try? String(contentsOfFile: path("console.log"), encoding: .utf8)) ?? ""
    }

    /// Waits up to 60 s (TCG boots in about 3) for `line` on the console.
    private func waitForConsole(_ line: String) throws {
        for _ in 0..<600 {
            if try console().contains(line) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("the guest never said \(line); its console: \(try console())")
        throw CancellationError()
    }
}

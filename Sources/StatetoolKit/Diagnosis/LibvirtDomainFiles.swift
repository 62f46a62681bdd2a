import FoundationEssentials

/// Where libvirt keeps a domain's managed-save image and logs, under a root
/// (`/` on the host): `/var/lib/libvirt/qemu/save/NAME.save`,
/// `/var/log/libvirt/qemu/NAME.log` and `NAME-fs*-virtiofsd.log` beside it.
public struct LibvirtDomainFiles: Hashable, Sendable {
    /// The managed-save image, if it exists.
    public let saveImage: String?
    /// The logs that exist: the domain log first, then virtiofsd's, by name.
    public let logs: [String]
    /// The paths looked at that do not exist.
    public let absent: [String]

    /// The files of domain `name` under `root`.
    public init(domain name: String, root: String = "/") {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        let image = base + "/var/lib/libvirt/qemu/save/\(name).save"
        let logDirectory = base + "/var/log/libvirt/qemu"
        let domainLog = logDirectory + "/\(name).log"
        let files = FileManager.default
        var absent: [String] = []
        saveImage = files.fileExists(atPath: image) ? image : nil
        if saveImage == nil { absent.append(image) }
        var logs: [String] = []
        if files.fileExists(atPath: domainLog) { logs.append(domainLog) } else { absent.append(domainLog) }
        let entries = (try? files.contentsOfDirectory(atPath: logDirectory)) ?? []
        logs += entries.filter { $0.hasPrefix("\(name)-fs") && $0.hasSuffix("-virtiofsd.log") }.sorted().map { logDirectory + "/" + $0 }
        self.logs = logs
        self.absent = absent
    }
}

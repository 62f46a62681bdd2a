/// The program a log line comes from, told by the line itself.
public enum LogSource: String, Sendable, Hashable, Encodable, CaseIterable {
    /// QEMU's standard error, or its lines in libvirt's domain log
    /// (`/var/log/libvirt/qemu/NAME.log`).
    case qemu
    /// libvirt's own lines in a domain log (`starting up libvirt version: ...`).
    case libvirt
    /// virtiofsd's log (`[TIME LEVEL virtiofsd...] message`), as libvirt
    /// writes it to `NAME-fs0-virtiofsd.log`.
    case virtiofsd
    /// passt's log (`passt ... -l FILE` or its standard error).
    case passt
}

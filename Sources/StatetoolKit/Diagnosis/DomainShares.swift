/// The virtiofs shares a libvirt domain XML declares: each `<filesystem>`
/// with `<driver type='virtiofs'/>`, its `<source dir=...>` and its PCI address.
public struct DomainShare: Hashable, Sendable {
    /// The shared directory (`<source dir=...>`); `nil` for a share served by
    /// a virtiofsd libvirt does not start (`<source socket=...>`).
    public let directory: String?
    /// The mount tag (`<target dir=...>`).
    public let tag: String?
    /// The PCI address as QEMU names the device's section
    /// (`0000:00:01.0`), when the XML gives one.
    public let pciAddress: String?
    /// The queue size (`<driver queue=...>`), when given.
    public let queueSize: Int?

    /// A share from its parts.
    public init(directory: String?, tag: String?, pciAddress: String?, queueSize: Int?) {
        self.directory = directory
        self.tag = tag
        self.pciAddress = pciAddress
        self.queueSize = queueSize
    }

    /// The virtiofs shares of `domainXML`, in the XML's order.
    public static func shares(in domainXML: String) -> [DomainShare] {
        var shares: [DomainShare] = []
        var rest = Substring(domainXML)
        while let open = rest.firstRange(of: "<filesystem") {
            let body: Substring
            if let close = rest[open.upperBound...].firstRange(of: "</filesystem>") {
                body = rest[open.upperBound..<close.lowerBound]
                rest = rest[close.upperBound...]
            } else {
                body = rest[open.upperBound...]
                rest = rest[rest.endIndex...]
            }
            guard let driver = element("driver", in: body), attribute("type", of: driver) == "virtiofs" else { continue }
            let source = element("source", in: body)
            let address = element("address", in: body)
            var pci: String?
            if let address, attribute("type", of: address) == "pci", let domain = number(attribute("domain", of: address)),
                let bus = number(attribute("bus", of: address)), let slot = number(attribute("slot", of: address)),
                let function = number(attribute("function", of: address))
            {
                pci = hex(domain, 4) + ":" + hex(bus, 2) + ":" + hex(slot, 2) + "." + String(function, radix: 16)
            }
            shares.append(
                DomainShare(
                    directory: source.flatMap { attribute("dir", of: $0) }, tag: element("target", in: body).flatMap { attribute("dir", of: $0) },
                    pciAddress: pci, queueSize: attribute("queue", of: driver).flatMap { Int($0) }))
        }
        return shares
    }

    /// The share of the device whose section is `device`
    /// (`0000:00:01.0/vhost-user-fs`): the one at its PCI address, else the
    /// only share with a directory.
    public static func share(for device: String?, in shares: [DomainShare]) -> DomainShare? {
        if let device, let address = device.split(separator: "/").first, let match = shares.first(where: { $0.pciAddress == String(address) }) {
            return match
        }
        let withDirectory = shares.filter { $0.directory != nil }
        return withDirectory.count == 1 ? withDirectory[0] : nil
    }

    private static func element(_ name: String, in body: Substring) -> Substring? {
        guard let open = body.firstRange(of: "<" + name + " ") ?? body.firstRange(of: "<" + name + "/"),
            let close = body[open.upperBound...].firstIndex(of: ">")
        else { return nil }
        return body[open.upperBound..<close]
    }

    private static func attribute(_ name: String, of element: Substring) -> String? {
        for quote in ["'", "\""] {
            if let start = element.firstRange(of: " " + name + "=" + quote) ?? (element.hasPrefix(name + "=" + quote) ? element.firstRange(of: name + "=" + quote) : nil),
                let end = element[start.upperBound...].firstIndex(of: Character(quote))
            {
                return unescape(element[start.upperBound..<end])
            }
        }
        return nil
    }

    private static func unescape(_ text: Substring) -> String {
        var result = String(text)
        for (entity, character) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&amp;", "&")] {
            result = result.replacing(entity, with: character)
        }
        return result
    }

    private static func number(_ text: String?) -> Int? {
        guard let text else { return nil }
        return text.hasPrefix("0x") ? Int(text.dropFirst(2), radix: 16) : Int(text)
    }

    private static func hex(_ value: Int, _ width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

import StateStream
import SystemPackage

/// The device sections at the end of a regular, uncompressed migration file,
/// found from the file's end without reading what comes before them.
///
/// QEMU writes the device (FULL) sections last, after the RAM, then the EOF
/// marker and the JSON description, which lists every device section in file
/// order with the bytes each field took. So the sections can be placed from
/// the end: the last one ends at the EOF marker, and each starts its
/// described size before the next. Each placement is verified before it is
/// trusted: the section header at the computed start (FULL, the idstr,
/// instance and version the description gives), the footer at its end (`0x7e`
/// and the header's section id), a footer right before the first placed
/// section (the end of whatever precedes it), and for a vhost-user-fs state
/// its subsection header and its chunk framing, hopped length by length, which
/// must end exactly at the described size.
///
/// Sections are placed back to the first device that can hold a back-end
/// state (see ``BackEndStateSubsection``), or for a walk that keeps section
/// bodies back to the first device: what the walk then reads is those
/// sections and the description, whatever the size of the guest's RAM.
///
/// ```swift
/// var bytesRead: UInt64 = 0
/// let placement = try TailPlacement.place(in: file, size: size, streamStart: 0, bytesRead: &bytesRead)
/// print(placement.resumeOffset)
/// ```
public struct TailPlacement: Hashable, Sendable {
    /// One section placed from the end.
    public struct Section: Hashable, Sendable {
        /// Its id and what its FULL header said.
        public let identity: SectionIdentity
        /// The offset of its FULL header.
        public let offset: UInt64
        /// Its bytes, header and footer included.
        public let byteCount: UInt64
    }

    /// Why the sections could not be placed; the caller walks the file instead.
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// Why, in one sentence.
        public let description: String

        init(_ description: String) { self.description = description }
    }

    /// The placed sections, in file order.
    public let sections: [Section]
    /// The description at the end of the file.
    public let trailer: VMDescription.Trailer

    /// Where reading resumes: the offset of the first placed section.
    public var resumeOffset: UInt64 { sections.first?.offset ?? trailer.endOfFileOffset }

    /// The most chunk lengths of one embedded stream hopped to check its framing.
    public static let maximumChunksChecked = 1 << 16

    /// Places the device sections of the regular file `file` of `size` bytes,
    /// whose QEMU stream begins at `streamStart` (0, or after a container's
    /// header). Every byte read (with `pread`: the file's position does not
    /// move) is added to `bytesRead`, placed or not.
    ///
    /// - Throws: ``Failure`` when anything does not check out.
    ///
    /// With `allDevices`, every device section of the description is placed
    /// (for a walk that keeps every section's body), not only those from the
    /// first that may hold a back-end state on.
    public static func place(
        in file: FileDescriptor, size: UInt64, streamStart: UInt64, allDevices: Bool = false, bytesRead: inout UInt64
    ) throws(Failure) -> TailPlacement {
        let found: VMDescription.Trailer?
        do {
            found = try VMDescription.readTrailer(of: file, size: size, bytesRead: &bytesRead)
        } catch {
            throw Failure("the end of the file, where its JSON description is, cannot be read: \(error)")
        }
        guard let trailer = found else {
            throw Failure("no JSON description ends the file")
        }
        var reads = PositionalReads(file: file, lowest: streamStart + UInt64(MigrationFormat.headerSize))
        defer { bytesRead += reads.bytesRead }
        let devices = trailer.description.devices
        guard let first = allDevices ? (devices.isEmpty ? nil : 0) : devices.firstIndex(where: { $0.mayHoldBackEndState }) else {
            throw Failure(allDevices ? "the JSON description names no device" : "the JSON description names no device that holds a back-end state")
        }
        var sections: [Section] = []
        var end = trailer.endOfFileOffset
        for index in devices.indices[first...].reversed() {
            let section = try place(devices[index], endingAt: end, reads: &reads)
            sections.append(section)
            end = section.offset
        }
        let before = try reads.bytes(at: end - UInt64(MigrationFormat.footerSize), count: 1, for: "the record before the first placed section")
        guard before[0] == MigrationFormat.RecordType.sectionFooter.rawValue else {
            throw Failure("no section footer ends the record before offset \(end), where the first placed section starts")
        }
        return TailPlacement(sections: sections.reversed(), trailer: trailer)
    }

    /// Places `device`, whose section ends (footer included) at `end`, and verifies it.
    private static func place(_ device: VMDescription.Device, endingAt end: UInt64, reads: inout PositionalReads) throws(Failure) -> Section {
        let name = Array(device.name.utf8)
        guard name.count <= 255 else { throw Failure("the JSON description names a device \(device.name) longer than an idstr") }
        let headerSize = UInt64(6 + name.count + 8)
        let (size, overflow) = (headerSize + UInt64(MigrationFormat.footerSize)).addingReportingOverflow(device.bodyByteCount)
        guard !overflow, size <= end - min(end, reads.lowest) else {
            throw Failure("\(device.name) is described larger (\(device.bodyByteCount) bytes of body) than the file before offset \(end)")
        }
        let start = end - size
        let header = try reads.bytes(at: start, count: Int(headerSize), for: "the section header of \(device.name)")
        let id = header[1..<5].readInteger(as: UInt32.self)!
        guard header[0] == MigrationFormat.RecordType.sectionFull.rawValue, header[5] == UInt8(name.count),
            Array(header[6..<6 + name.count]) == name,
            header[(6 + name.count)...].readInteger(as: UInt32.self) == device.instanceID,
            header[(10 + name.count)...].readInteger(as: UInt32.self) == device.version
        else {
            throw Failure("no FULL header of \(device.name), instance \(device.instanceID), version \(device.version) at offset \(start), where the JSON description puts it")
        }
        let footerOffset = end - UInt64(MigrationFormat.footerSize)
        let footer = try reads.bytes(at: footerOffset, count: MigrationFormat.footerSize, for: "the footer of \(device.name)")
        guard footer[0] == MigrationFormat.RecordType.sectionFooter.rawValue, footer[1...].readInteger(as: UInt32.self) == id else {
            throw Failure("no footer of section \(id) (\(device.name)) at offset \(footerOffset), where the JSON description ends it")
        }
        if let stateLength = device.backEndStateByteCount {
            try checkBackEndState(of: device, bodyOffset: start + headerSize, length: stateLength, reads: &reads)
        }
        let identity = SectionIdentity(id: id, name: device.name, instanceID: device.instanceID, version: device.version)
        return Section(identity: identity, offset: start, byteCount: size)
    }

    /// Checks the vhost-user-fs state of `device`, whose body starts at
    /// `bodyOffset`: its subsection header where the description puts it, and
    /// chunk lengths that lead exactly to the described end.
    private static func checkBackEndState(
        of device: VMDescription.Device, bodyOffset: UInt64, length: UInt64, reads: inout PositionalReads
    ) throws(Failure) {
        let subsection = BackEndStateSubsection.vhostUserFS
        guard let index = device.subsections.firstIndex(where: { $0.vmsdName == subsection.name }) else { return }
        let headerOffset = bodyOffset + VMDescription.byteCount(device.fields, Array(device.subsections[..<index]))
        let header = try reads.bytes(at: headerOffset, count: subsection.header.count, for: "the \(subsection.name) header")
        guard header == subsection.header else {
            throw Failure("no \(subsection.name) subsection header at offset \(headerOffset), where the JSON description puts it")
        }
        let streamOffset = headerOffset + UInt64(subsection.header.count)
        let end = streamOffset + length
        var offset = streamOffset
        for _ in 0..<maximumChunksChecked {
            guard offset + UInt64(StateStreamFormat.lengthFieldSize) <= end else { break }
            let field = try reads.bytes(at: offset, count: StateStreamFormat.lengthFieldSize, for: "a chunk length of \(device.name)'s state")
            let chunkLength = field.readInteger(as: UInt32.self)!
            offset += UInt64(StateStreamFormat.lengthFieldSize)
            if chunkLength == 0 {
                guard offset == end else { break }
                return
            }
            offset += UInt64(chunkLength)
        }
        throw Failure("the chunk lengths of \(device.name)'s state, from offset \(streamOffset), do not end at its described \(length) bytes")
    }
}

extension VMDescription.Device {
    /// Whether the section may carry a vhost-user back-end's state: its
    /// idstr's last component is a section that holds one.
    var mayHoldBackEndState: Bool {
        let vmsdName = SectionIdentity.vmsdName(ofIdstr: name)
        return BackEndStateSubsection.all.contains { $0.sectionVMSDName == vmsdName }
    }
}

/// Exact reads of a regular file at offsets at or after `lowest`, counted.
private struct PositionalReads {
    let file: FileDescriptor
    /// No read goes before this offset (the stream's header ends there).
    let lowest: UInt64
    private(set) var bytesRead: UInt64 = 0

    init(file: FileDescriptor, lowest: UInt64) {
        self.file = file
        self.lowest = lowest
    }

    /// The `count` bytes at `offset`; what they are, `what`, names them in the failure.
    mutating func bytes(at offset: UInt64, count: Int, for what: String) throws(TailPlacement.Failure) -> [UInt8] {
        guard offset >= lowest else { throw TailPlacement.Failure("\(what) would start at offset \(offset), inside the file's header") }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let read: Int
            do {
                read = try bytes.withUnsafeMutableBytes {
                    try file.read(fromAbsoluteOffset: Int64(offset) + Int64(filled), into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]), retryOnInterrupt: true)
                }
            } catch {
                throw TailPlacement.Failure("\(what) at offset \(offset) cannot be read: \(error)")
            }
            guard read > 0 else { throw TailPlacement.Failure("\(what) at offset \(offset) lies past the end of the file") }
            filled += read
            bytesRead += UInt64(read)
        }
        return bytes
    }
}

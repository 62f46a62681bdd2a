import MigrationFile
import StateStream
import SystemPackage

/// A libvirt save image (`virsh save`, `virsh managedsave`): libvirt's header,
/// the domain XML and the migration cookie, then QEMU's migration stream, raw
/// or compressed, to the end of the file (libvirt's `src/qemu/qemu_saveimage.c`).
///
/// ``open(_:file:fileSize:)`` reads the header and the XML (at most
/// ``maximumDataLength`` bytes, read as they come, never allocated by the
/// header's word) and hands on the QEMU stream as a `StateStreamInput`
/// whose offsets count bytes of the image decompressed, libvirt's header
/// included: a raw image and its compressed twin report the same offsets,
/// and those of a raw image are file offsets.
///
/// ```swift
/// let (image, stream) = try SaveImage.open(FileDescriptorSource(path: "vm.save"))
/// print(image.domainName ?? "?", image.header.format)   // guest gzip
/// try MigrationFileReader(input: stream).walk { print($0) }
/// ```
public struct SaveImage: Sendable {
    /// The largest `data_len` read: libvirt's XML is tens of KiB and 64 KiB of padding.
    public static let maximumDataLength = 16 << 20

    /// libvirt's 92-byte header.
    public let header: SaveImageHeader
    /// The `data_len` bytes after the header: domain XML, cookie, padding, as they are.
    public let data: [UInt8]

    /// The domain XML (to its NUL).
    public var domainXML: String {
        String(decoding: data[..<domainXMLEnd], as: UTF8.self)
    }

    /// The migration cookie's XML (version 2 with a `cookieOffset`), to its NUL.
    public var cookieXML: String? {
        guard header.version >= 2, header.cookieOffset > 0 else { return nil }
        let start = Int(header.cookieOffset)
        let end = data[start...].firstIndex(of: 0) ?? data.endIndex
        return String(decoding: data[start..<end], as: UTF8.self)
    }

    /// The domain's `<name>`, unescaped.
    public var domainName: String? { Self.firstElement("name", in: domainXML) }
    /// The domain's `<uuid>`.
    public var domainUUID: String? { Self.firstElement("uuid", in: domainXML) }

    private var domainXMLEnd: Int { data.firstIndex(of: 0) ?? data.endIndex }

    /// Reads the header and XML from `source` (the image from its first byte;
    /// a pipe works) and returns the image and its QEMU stream, the rest of
    /// `source`, decompressed as the header says.
    ///
    /// - Parameters:
    ///   - source: The image, from its first byte.
    ///   - file: The image's descriptor when it is a regular file: the stream of
    ///     a raw image can then be read again by offset.
    ///   - fileSize: The image's size when it is a regular file: a header that
    ///     puts the QEMU stream beyond it is refused, and the stream carries it
    ///     (to show progress).
    /// - Throws: ``SaveImageProblem`` for a header, XML or stream start that is
    ///   not what libvirt writes; `InputError` when the file cannot be read.
    public static func open(
        _ source: any ByteSource, file: FileDescriptor? = nil, fileSize: UInt64? = nil
    ) throws -> (image: SaveImage, stream: StateStreamInput) {
        let image = try read(source, fileSize: fileSize)
        return (image, try image.stream(reading: source, file: file, fileSize: fileSize))
    }

    /// Reads the header and XML from `source` (the image from its first byte),
    /// leaving it at the first byte of the QEMU stream.
    ///
    /// - Throws: ``SaveImageProblem``, or `InputError` when the file cannot be read.
    public static func read(_ source: any ByteSource, fileSize: UInt64? = nil) throws -> SaveImage {
        let headerBytes = try source.readPrefix(SaveImageHeader.byteCount)
        let header = try SaveImageHeader(parsing: headerBytes)
        if header.magic == .partial {
            throw SaveImageProblem(
                .unfinishedSave, at: 0,
                "LibvirtQemudPart: libvirt never finished this save (it writes LibvirtQemudSave when QEMU's stream is complete)")
        }
        if let fileSize, header.streamOffset > fileSize {
            throw SaveImageProblem(
                .badHeader, at: 20,
                "data_len \(header.dataLength) puts the QEMU stream at offset \(header.streamOffset), beyond the end of the file at \(fileSize)")
        }
        guard header.dataLength <= maximumDataLength else {
            throw SaveImageProblem(
                .badHeader, at: 20, "data_len \(header.dataLength) is more than \(maximumDataLength >> 20) MiB of XML: not what libvirt writes")
        }
        let data = try source.readPrefix(Int(header.dataLength))
        guard data.count == Int(header.dataLength) else {
            throw SaveImageProblem(
                .truncatedFile, at: SaveImageHeader.dataOffset + UInt64(data.count),
                "the file ends inside the domain XML: data_len says \(header.dataLength) bytes, \(data.count) follow the header")
        }
        let image = SaveImage(header: header, data: data)
        try image.checkXML()
        return image
    }

    /// Checks that the domain XML and the cookie end with their NULs where the header says.
    private func checkXML() throws(SaveImageProblem) {
        let xmlEnd = header.version >= 2 && header.cookieOffset > 0 ? Int(header.cookieOffset) : data.count
        guard let nul = data[..<xmlEnd].firstIndex(of: 0) else {
            throw SaveImageProblem(
                .badXML, at: SaveImageHeader.dataOffset,
                "the domain XML has no NUL within its \(xmlEnd) bytes (cookieOffset or data_len)")
        }
        guard String(validating: data[..<nul], as: UTF8.self) != nil, domainXML.contains("<domain") else {
            throw SaveImageProblem(.badXML, at: SaveImageHeader.dataOffset, "the domain XML is not a <domain> element in UTF-8")
        }
        if header.version >= 2, header.cookieOffset > 0, data[Int(header.cookieOffset)...].firstIndex(of: 0) == nil {
            throw SaveImageProblem(
                .badXML, at: SaveImageHeader.dataOffset + UInt64(header.cookieOffset), "the cookie has no NUL before the QEMU stream")
        }
    }

    /// The QEMU stream in `rest` (the image after its XML), checked to start as the format says.
    ///
    /// - Throws: ``SaveImageProblem`` for a format statetool does not read or a
    ///   stream that does not start as the header says.
    public func stream(reading rest: any ByteSource, file: FileDescriptor?, fileSize: UInt64?) throws -> StateStreamInput {
        let offset = header.streamOffset
        let compression = header.format.compression
        if compression == .lzop {
            throw SaveImageProblem(
                .unsupportedFormat, at: 28,
                "lzop: no maintained library reads lzop's format; decompress the stream (lzop -dc) or save in another format")
        }
        let leading = try rest.readPrefix(Compression.magicLength)
        let found = Compression.detect(leadingBytes: leading)
        let startsRight = compression == .none ? MigrationFormat.startsWithMagic(leading) || leading.isEmpty : found == compression
        guard startsRight else {
            let what = found == .none ? "begins \(leading.hexString(separator: " "))" : "is \(found.rawValue)-compressed"
            throw SaveImageProblem(.formatMismatch, at: offset, "the header says \(header.format), but the QEMU stream \(what)")
        }
        return try StateStreamInput(
            contents: PrefixedSource(prefix: leading, rest: rest), compression: compression,
            regularFile: compression == .none ? file : nil, regularFileSize: fileSize, baseOffset: offset, storedOffset: offset)
    }

    /// The text of the first `<element>…</element>`, with XML's five entities decoded.
    static func firstElement(_ element: String, in xml: String) -> String? {
        guard let open = xml.firstRange(of: "<\(element)>"), let close = xml[open.upperBound...].firstRange(of: "</\(element)>")
        else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
            .replacing("&lt;", with: "<").replacing("&gt;", with: ">")
            .replacing("&quot;", with: "\"").replacing("&apos;", with: "'")
            .replacing("&amp;", with: "&")
    }
}

import LibvirtSaveImage
import MigrationFile
import StateStream
import Testing
import Glibc

/// Save images built here byte by byte, as libvirt's `qemu_saveimage.c` writes them.
enum SaveImages {
    static let domainXML = Array("<domain type='qemu'>\n  <name>web &amp; db</name>\n  <uuid>0c5a2f9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f</uuid>\n</domain>\n".utf8) + [0]
    static let cookieXML = Array("<cookie>\n  <slirpHelper/>\n</cookie>\n".utf8) + [0]

    /// Header words in order: version, data_len, was_running, format, cookieOffset, then 14 zeros.
    static func header(
        magic: String = "LibvirtQemudSave", version: UInt32 = 2, dataLength: UInt32? = nil, wasRunning: UInt32 = 1,
        format: UInt32 = 0, cookieOffset: UInt32? = nil, bigEndian: Bool = false
    ) -> [UInt8] {
        let words: [UInt32] = [version, dataLength ?? UInt32(data.count), wasRunning, format, cookieOffset ?? UInt32(domainXML.count)]
            + [UInt32](repeating: 0, count: 14)
        return Array(magic.utf8) + words.flatMap { $0.bytes(endianness: bigEndian ? .big : .little) }
    }

    /// XML, cookie and libvirt's 64 KiB of zeros.
    static var data: [UInt8] { domainXML + cookieXML + Array(repeating: 0, count: 65536) }

    /// A migration stream's first bytes (only its start is looked at here).
    static let stream = Array("QEVM".utf8) + [0, 0, 0, 3]

    static func image(header: [UInt8] = header(), data: [UInt8] = data, stream: [UInt8] = stream) -> [UInt8] {
        header + data + stream
    }
}

@Suite struct SaveImageHeaderTests {
    private func problem(_ bytes: [UInt8], fileSize: UInt64? = nil) -> SaveImageProblem? {
        do {
            _ = try SaveImage.open(ByteArraySource(bytes), fileSize: fileSize)
            return nil
        } catch {
            return error as? SaveImageProblem
        }
    }

    @Test func aHeaderLibvirtWroteReadsBackAsItWas() throws {
        let (image, stream) = try SaveImage.open(ByteArraySource(SaveImages.image(), maximumReadSize: 7))
        #expect(image.header.magic == .complete)
        #expect(image.header.version == 2)
        #expect(image.header.dataLength == UInt32(SaveImages.data.count))
        #expect(image.header.wasRunning == 1)
        #expect(image.header.format == .raw)
        #expect(image.header.streamOffset == UInt64(92 + SaveImages.data.count))
        #expect(image.header.bytes == SaveImages.header())
        #expect(image.data == SaveImages.data)
        #expect(image.domainName == "web & db")
        #expect(image.domainUUID == "0c5a2f9e-1d2b-4c3d-8e4f-5a6b7c8d9e0f")
        #expect(image.cookieXML == "<cookie>\n  <slirpHelper/>\n</cookie>\n")
        #expect(stream.compression == .none)
        #expect(stream.baseOffset == image.header.streamOffset)
        #expect(try stream.framedSource.readPrefix(100) == SaveImages.stream)
    }

    @Test func aBigEndianHeaderIsSwappedAndWrittenBackTheSameWay() throws {
        let bytes = SaveImages.header(format: 3, bigEndian: true)
        let header = try SaveImageHeader(parsing: bytes)
        #expect(header.isBigEndian)
        #expect(header.version == 2 && header.format == .xz)
        #expect(header.bytes == bytes)
    }

    @Test func aVersionOneImageHasNoCookie() throws {
        let image = try SaveImage.read(ByteArraySource(SaveImages.image(header: SaveImages.header(version: 1, cookieOffset: 0))))
        #expect(image.cookieXML == nil)
        #expect(image.domainName == "web & db")
    }

    @Test func everyHostileFieldIsNamedAtItsOffset() {
        #expect(problem(Array(SaveImages.header().prefix(50))) == SaveImageProblem(.truncatedFile, at: 50, "the file ends inside libvirt's 92-byte header"))
        #expect(problem(SaveImages.image(header: SaveImages.header(magic: "LibvirtQemudPart")))?.kind == .unfinishedSave)
        #expect(problem(SaveImages.image(header: SaveImages.header(magic: "LibvirtQemudXXXX")))?.kind == .notASaveImage)
        let version = problem(SaveImages.image(header: SaveImages.header(version: 7)))
        #expect(version?.kind == .unsupportedVersion && version?.offset == 16)
        #expect(problem(SaveImages.image(header: SaveImages.header(format: 9))) == SaveImageProblem(.badHeader, at: 28, "format 9 is none of libvirt's (0 raw to 6 sparse)"))
        #expect(problem(SaveImages.image(header: SaveImages.header(dataLength: 0))) == SaveImageProblem(.badHeader, at: 20, "data_len is 0: there is no domain XML"))
        #expect(problem(SaveImages.image(header: SaveImages.header(cookieOffset: 70_000))) == SaveImageProblem(.badHeader, at: 32, "cookieOffset 70000 is beyond data_len \(SaveImages.data.count)"))
    }

    @Test func aLengthBeyondTheFileIsRefusedBeforeAnythingIsRead() {
        let bytes = SaveImages.image(header: SaveImages.header(dataLength: 0xFFFF_FF00))
        #expect(problem(bytes, fileSize: UInt64(bytes.count)) == SaveImageProblem(
            .badHeader, at: 20, "data_len 4294967040 puts the QEMU stream at offset 4294967132, beyond the end of the file at \(bytes.count)"))
        // From a pipe, no size to check against: libvirt's XML is never 16 MiB.
        #expect(problem(bytes) == SaveImageProblem(.badHeader, at: 20, "data_len 4294967040 is more than 16 MiB of XML: not what libvirt writes"))
        // Within the bound, a pipe that ends early: truncated where it ends, nothing allocated by the word.
        let short = SaveImages.header(dataLength: 10 << 20) + SaveImages.data
        #expect(problem(short) == SaveImageProblem(
            .truncatedFile, at: UInt64(short.count), "the file ends inside the domain XML: data_len says 10485760 bytes, \(SaveImages.data.count) follow the header"))
    }

    @Test func xmlThatIsNotLibvirtsIsBadXML() {
        let noNul = SaveImages.domainXML.dropLast() + [0x20] + SaveImages.cookieXML + Array(repeating: 0, count: 16)
        let found = problem(SaveImages.image(header: SaveImages.header(dataLength: UInt32(noNul.count)), data: Array(noNul)))
        #expect(found == SaveImageProblem(.badXML, at: 92, "the domain XML has no NUL within its \(SaveImages.domainXML.count) bytes (cookieOffset or data_len)"))
        let notDomain = Array("<network/>".utf8) + [0] + Array(repeating: 0, count: 200)
        #expect(problem(SaveImages.image(header: SaveImages.header(dataLength: UInt32(notDomain.count), cookieOffset: 0), data: notDomain))?.kind == .badXML)
    }

    @Test func theStreamMustBeStoredAsTheHeaderSays() {
        let gzipSaysRaw = problem(SaveImages.image(header: SaveImages.header(format: 1)))
        #expect(gzipSaysRaw == SaveImageProblem(.formatMismatch, at: UInt64(92 + SaveImages.data.count), "the header says gzip, but the QEMU stream begins 51 45 56 4d 00 00"))
        let zstd: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0]
        #expect(problem(SaveImages.image(stream: zstd))?.message == "the header says raw, but the QEMU stream is zstd-compressed")
    }

    @Test func lzopIsNamedNotReadAndSparseIsAStreamInPlace() throws {
        #expect(problem(SaveImages.image(header: SaveImages.header(format: 4))) == SaveImageProblem(
            .unsupportedFormat, at: 28, "lzop: no maintained library reads lzop's format; decompress the stream (lzop -dc) or save in another format"))
        // Sparse: QEMU's mapped-ram stream, raw, its offsets the image's.
        let (image, stream) = try SaveImage.open(ByteArraySource(SaveImages.image(header: SaveImages.header(format: 6))))
        #expect(image.header.format == .sparse)
        #expect(stream.compression == .none && stream.baseOffset == image.header.streamOffset)
        // The header and XML read without the stream, for `libvirt xml`.
        #expect(try SaveImage.read(ByteArraySource(SaveImages.image(header: SaveImages.header(format: 4)))).domainName == "web & db")
    }

    @Test func aCopyKeepsTheHeaderAndXMLAndCompressesInTheImagesFormat() throws {
        for format: UInt32 in [0, 1, 2, 3, 5, 6] {
            let image = try SaveImage.read(ByteArraySource(SaveImages.image(header: SaveImages.header(format: format))))
            let path = "/tmp/statetool-saveimage-copy-\(format)"
            let file = try OutputFile(path: path, protecting: [])
            let copy = try image.beginCopy(in: file)
            let sink: any ByteSink
            switch copy.output {
            case .file(let output): sink = output
            case .sink(let compressor): sink = compressor
            }
            try sink.write(SaveImages.stream)
            try copy.compressor?.finish()
            try file.commit()
            let written = try FileDescriptorSource(path: path)
            let (again, stream) = try SaveImage.open(written)
            #expect(again.header == image.header && again.data == image.data)
            #expect(stream.compression == image.header.format.compression)
            #expect(try stream.framedSource.readPrefix(100) == SaveImages.stream)
            try? removeFile(path)
        }
    }
}

/// Removes a file without Foundation.
private func removeFile(_ path: String) throws {
    _ = path.withCString { unlink($0) }
}

import MigrationFile
import StateStream
import Testing

/// The RAM block list a walk reports: name, size, page size, where it is listed, a mapped-ram block's region.
@Suite struct RAMBlockTests {
    @Test func theSampleFileListsItsBlocks() throws {
        let file = SampleMigrationFile()
        let survey = try WalkRecord.walk(file.bytes).survey
        // The RAM START header (0x01, be32 id, "ram", be32 instance, be32 version), then the MEM_SIZE word.
        let first = file.mark("ram") + 17 + 8
        #expect(survey.ramBlocks == [
            RAMBlock(name: "mem", byteCount: 8 * 1024, pageSize: 1024, offset: first, mappedRegion: nil),
            RAMBlock(name: "pc.rom", byteCount: 1024, pageSize: 1024, offset: first + 1 + 3 + 8, mappedRegion: nil),
        ])
    }

    @Test func aMappedRAMBlockSaysWhereItsPagesAre() throws {
        let mapped = MappedRAMFile(blockLength: 64 << 10)
        let survey = try WalkRecord.walk(mapped.bytes).survey
        #expect(survey.ramBlocks == [
            RAMBlock(
                name: "pc.ram", byteCount: 64 << 10, pageSize: 4096, offset: mapped.headerOffset - 1 - 6 - 8,
                mappedRegion: RAMBlock.MappedRegion(bitmapOffset: mapped.bitmapOffset, pagesOffset: mapped.pagesOffset)),
        ])
    }
}

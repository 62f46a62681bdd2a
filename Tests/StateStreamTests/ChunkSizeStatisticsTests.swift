import StateStream
import Testing

@Suite struct ChunkSizeStatisticsTests {
    private func statistics(_ lengths: [UInt32]) -> ChunkSizeStatistics {
        var statistics = ChunkSizeStatistics()
        lengths.forEach { statistics.record($0) }
        return statistics
    }

    @Test func emptyHasNoValues() {
        let empty = ChunkSizeStatistics()
        #expect(empty.count == 0)
        #expect(empty.minimum == nil && empty.median == nil && empty.maximum == nil)
        #expect(empty.histogram.isEmpty)
    }

    @Test func medianOfOddCountIsTheMiddle() {
        #expect(statistics([5, 1, 9]).median == 5)
    }

    @Test func medianOfEvenCountIsTheLowerMiddle() {
        #expect(statistics([65536, 65536, 65536, 41844]).median == 65536)
        #expect(statistics([1, 2, 3, 4]).median == 2)
    }

    @Test func histogramBucketsArePowersOfTwo() {
        let buckets = statistics([1, 2, 3, 4, 5, 65536, 65535, 32769, 32768]).histogram
        #expect(buckets == [
            .init(lowerBound: 0, upperBound: 1, count: 1),
            .init(lowerBound: 1, upperBound: 2, count: 1),
            .init(lowerBound: 2, upperBound: 4, count: 2),
            .init(lowerBound: 4, upperBound: 8, count: 1),
            .init(lowerBound: 16384, upperBound: 32768, count: 1),
            .init(lowerBound: 32768, upperBound: 65536, count: 3),
        ])
    }

    @Test func largestLengthHasABucket() {
        #expect(statistics([.max]).histogram == [.init(lowerBound: 1 << 31, upperBound: 1 << 32, count: 1)])
    }
}

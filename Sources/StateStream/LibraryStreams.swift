import CBzip2
import CLzma
import CZlib

/// One call of zlib, libbz2 or liblzma on its stream struct, for the
/// decoders (`StreamDecoders`) and encoders (`CompressingSink`) alike: the
/// stream pointed at `input` and `output`, `call` made, and how much of each
/// it used. The structs stay where they were allocated (zlib and libbz2 keep
/// a pointer back to them).
extension UnsafeMutablePointer where Pointee == z_stream {
    func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, _ call: (Self) -> Int32
    ) -> (consumed: Int, produced: Int, result: Int32) {
        pointee.next_in = UnsafeMutablePointer<Bytef>(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        pointee.avail_in = UInt32(min(input.count, Int(UInt32.max)))
        pointee.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        pointee.avail_out = UInt32(min(output.count, Int(UInt32.max)))
        let (availableIn, availableOut) = (pointee.avail_in, pointee.avail_out)
        let result = call(self)
        return (Int(availableIn - pointee.avail_in), Int(availableOut - pointee.avail_out), result)
    }
}

extension UnsafeMutablePointer where Pointee == bz_stream {
    func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, _ call: (Self) -> Int32
    ) -> (consumed: Int, produced: Int, result: Int32) {
        pointee.next_in = UnsafeMutablePointer<CChar>(mutating: input.baseAddress?.assumingMemoryBound(to: CChar.self))
        pointee.avail_in = UInt32(min(input.count, Int(UInt32.max)))
        pointee.next_out = output.baseAddress?.assumingMemoryBound(to: CChar.self)
        pointee.avail_out = UInt32(min(output.count, Int(UInt32.max)))
        let (availableIn, availableOut) = (pointee.avail_in, pointee.avail_out)
        let result = call(self)
        return (Int(availableIn - pointee.avail_in), Int(availableOut - pointee.avail_out), result)
    }
}

extension UnsafeMutablePointer where Pointee == lzma_stream {
    func step(
        _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer, _ action: lzma_action
    ) -> (consumed: Int, produced: Int, result: lzma_ret) {
        pointee.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        pointee.avail_in = input.count
        pointee.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        pointee.avail_out = output.count
        let result = lzma_code(self, action)
        return (input.count - pointee.avail_in, output.count - pointee.avail_out, result)
    }
}

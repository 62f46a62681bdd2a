import Glibc
import SystemPackage

/// Runs a C call that returns -1 and sets `errno` on failure, as
/// swift-system's `valueOrErrno(retryOnInterrupt:_:)` does: the value, or the
/// call's `Errno`, calling again after `EINTR` when `retryOnInterrupt` is set.
///
/// Every system call statetool makes goes through this function, so no other
/// file reads `errno` or loops on `EINTR`.
@inline(__always)
func valueOrErrno<Value: FixedWidthInteger>(
    retryOnInterrupt: Bool = true,
    _ call: () -> Value
) -> Result<Value, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let failure = Errno(rawValue: errno)
        if retryOnInterrupt && failure == .interrupted { continue }
        return .failure(failure)
    }
}

extension Result where Failure == Errno {
    /// The value, or a ``SystemCallError`` naming `call`.
    @inline(__always)
    func get(naming call: String) throws(SystemCallError) -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let errno): throw SystemCallError(call, errno)
        }
    }
}

/// Runs a call that reads or moves bytes at `*offset` and advances it, as
/// `splice` and `copy_file_range` do with their offset pointer: `offset`
/// takes the new position only when the call worked.
@inline(__always)
func advancing(_ offset: inout Int64, naming call: String, _ body: (UnsafeMutablePointer<Int64>) -> Int) throws(SystemCallError) -> Int {
    var position = offset
    let count = try valueOrErrno { body(&position) }.get(naming: call)
    offset = position
    return count
}

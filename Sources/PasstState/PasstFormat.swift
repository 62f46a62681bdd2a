/// The rules of passt's migration state, in one place, from passt's own
/// sources (`migrate.c`, `migrate.h`, `flow.c`, `tcp.c`, `tcp_conn.h`).
///
/// Everything is big-endian (network order) except the ports inside a flow's
/// sides, which passt copies from its flow table in host order
/// (little-endian on every host QEMU migrates here). Version 2 (passt from
/// 2025-03 on) is: a 16-byte header, the 42 bytes of observed guest
/// addresses, a u32 flow count, that many 112-byte `tcp_tap_transfer`
/// records, then per flow a 52-byte `tcp_tap_transfer_ext` record followed by
/// its send-queue and receive-queue bytes (none when its `tcpi_state` is 0:
/// the source could not dump the flow, and the target skips it).
public enum PasstFormat {
    /// `MIGRATE_MAGIC`, the first 8 bytes.
    public static let magic: [UInt8] = [0xb1, 0xbb, 0x1d, 0x1b, 0x0b, 0xb1, 0xd1, 0xb0]
    /// The one layout this decoder reads (and passt still writes).
    public static let version: UInt32 = 2
    /// Header: magic, version, compat version.
    public static let headerSize = 16
    /// `migrate_seen_addrs_v1`: IPv6, link-local IPv6, IPv4, MAC.
    public static let addressesSize = 42
    /// The flow count.
    public static let countSize = 4
    /// `tcp_tap_transfer`.
    public static let flowSize = 112
    /// `tcp_tap_transfer_ext`.
    public static let extendedSize = 52
    /// The most flows passt's table holds (`FLOW_MAX`, 2^17 - 1): a target
    /// given more cannot take them and loses its place in the stream.
    public static let maximumFlows: UInt32 = (1 << 17) - 1
    /// The longest send or receive queue passt migrates (64 MiB each).
    public static let maximumQueueLength: UInt32 = 64 << 20
}

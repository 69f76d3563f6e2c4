import Glibc
import SystemPackage

/// The bytes of `path` if it is a regular file of at most `limit` bytes, else nil: a FIFO, a
/// device or a symlink planted where the host reads its own files must neither hang nor flood it.
/// `followingLinks` is for paths a person named (a neuron file may well be a link).
func readRegularFile(_ path: String, limit: Int, followingLinks: Bool = false) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_NONBLOCK | (followingLinks ? 0 : O_NOFOLLOW) | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= limit else { return nil }
    // Sized by the file, not the limit (zeroing a MiB for each small manifest cost 0.7 ms), and
    // grown while it fills: the file may grow, and /proc says 0. One byte more than the limit
    // tells a file over it.
    var bytes = [UInt8](repeating: 0, count: min(limit, max(Int(info.st_size), 4095)) + 1)
    var count = 0
    while true {
        if count == bytes.count {
            guard bytes.count <= limit else { break }
            bytes += repeatElement(0, count: min(bytes.count, limit + 1 - bytes.count))
        }
        let n = try? syscallResult { bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) } }
        guard let n else { return nil }
        if n == 0 { break }
        count += n
    }
    guard count <= limit else { return nil }
    bytes.removeSubrange(count...)
    return bytes
}

import Foundation
import Glibc

/// The libraries an ELF shared object names as `DT_NEEDED`, read from its dynamic section.
/// The file is a plugin's, so hostile: it is opened without following a last link, without
/// blocking and never as a terminal, must be a regular file, and every offset it holds is checked
/// against its size before a read (`pread`, at most 1 MiB each). Only the headers, the dynamic
/// section and at most 256 bytes per name, of at most 512 names, are read.
enum ELFDependencies {
    static func needs(_ path: String, _ library: String) -> Bool { needed(path).contains(library) }

    /// Each `DT_NEEDED` name, in order; empty for anything that is not a readable ELF64 object.
    static func needed(_ path: String) -> [String] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return [] }
        let size = UInt64(info.st_size)
        func read(_ offset: UInt64, _ count: UInt64) -> [UInt8]? {
            guard count <= 1 << 20, offset <= size, count <= size - offset else { return nil }
            var bytes = [UInt8](repeating: 0, count: Int(count))
            let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(count), off_t(offset)) }
            return got == Int(count) ? bytes : nil
        }
        func u16(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(b[at]) | UInt64(b[at + 1]) << 8 }
        func u32(_ b: [UInt8], _ at: Int) -> UInt64 { u16(b, at) | u16(b, at + 2) << 16 }
        func u64(_ b: [UInt8], _ at: Int) -> UInt64 { u32(b, at) | u32(b, at + 4) << 32 }

        // ELF64, little-endian: e_phoff at 32, e_phentsize at 54, e_phnum at 56.
        guard let header = read(0, 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46]), header[4] == 2, header[5] == 1,
              u16(header, 54) == 56, u16(header, 56) <= 512,
              let table = read(u64(header, 32), 56 * u16(header, 56)) else { return [] }
        var loads: [(address: UInt64, offset: UInt64, size: UInt64)] = []
        var dynamic: (offset: UInt64, size: UInt64)?
        for base in stride(from: 0, to: table.count, by: 56) {
            switch u32(table, base) {
            case 1: loads.append((u64(table, base + 16), u64(table, base + 8), u64(table, base + 32)))  // PT_LOAD
            case 2: dynamic = (u64(table, base + 8), u64(table, base + 32))                              // PT_DYNAMIC
            default: break
            }
        }
        guard let dynamic, let entries = read(dynamic.offset, dynamic.size) else { return [] }
        var names: [UInt64] = [], stringTable: UInt64?, tableSize: UInt64?
        scan: for at in stride(from: 0, to: entries.count - 15, by: 16) {
            switch u64(entries, at) {
            case 0: break scan                               // DT_NULL
            case 1: names.append(u64(entries, at + 8))       // DT_NEEDED
            case 5: stringTable = u64(entries, at + 8)       // DT_STRTAB (an address)
            case 10: tableSize = u64(entries, at + 8)        // DT_STRSZ
            default: break
            }
        }
        guard let address = stringTable, let tableSize,
              let load = loads.first(where: { address >= $0.address && address - $0.address < $0.size }) else { return [] }
        let (start, overflow) = load.offset.addingReportingOverflow(address - load.address)
        guard !overflow else { return [] }
        return names.prefix(512).compactMap { name -> String? in
            guard name < tableSize else { return nil }
            let (at, overflow) = start.addingReportingOverflow(name)
            guard !overflow, let bytes = read(at, min(256, tableSize - name)), let end = bytes.firstIndex(of: 0), end > 0 else { return nil }
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }
}

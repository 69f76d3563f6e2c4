import Foundation

/// The libraries an ELF shared object names as `DT_NEEDED`, read from its dynamic section.
/// Only the headers, the dynamic section and its string table are read (each at most 1 MiB),
/// never the whole file; nil when it is not a 64-bit little-endian ELF file this can read. The
/// file is a plugin's, so hostile: every offset is bounded and checked before it is followed.
enum ELFDependencies {
    static func needed(_ path: String) -> [String]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        func read(_ offset: UInt64, _ count: UInt64) -> [UInt8]? {
            guard count <= 1 << 20, (try? handle.seek(toOffset: offset)) != nil,
                  let data = try? handle.read(upToCount: Int(count)), data.count == Int(count) else { return nil }
            return Array(data)
        }
        func u16(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(b[at]) | UInt64(b[at + 1]) << 8 }
        func u32(_ b: [UInt8], _ at: Int) -> UInt64 { u16(b, at) | u16(b, at + 2) << 16 }
        func u64(_ b: [UInt8], _ at: Int) -> UInt64 { u32(b, at) | u32(b, at + 4) << 32 }

        // ELF64, little-endian: e_phoff at 32, e_phentsize at 54, e_phnum at 56.
        guard let header = read(0, 64), header.starts(with: [0x7F, 0x45, 0x4C, 0x46]), header[4] == 2, header[5] == 1,
              u16(header, 54) == 56, u16(header, 56) <= 512,
              let table = read(u64(header, 32), 56 * u16(header, 56)) else { return nil }
        var loads: [(address: UInt64, offset: UInt64, size: UInt64)] = []
        var dynamic: (offset: UInt64, size: UInt64)?
        for base in stride(from: 0, to: table.count, by: 56) {
            switch u32(table, base) {
            case 1: loads.append((u64(table, base + 16), u64(table, base + 8), u64(table, base + 32)))  // PT_LOAD
            case 2: dynamic = (u64(table, base + 8), u64(table, base + 32))                              // PT_DYNAMIC
            default: break
            }
        }
        guard let dynamic, let entries = read(dynamic.offset, dynamic.size) else { return nil }
        var names: [UInt64] = [], stringTable: UInt64?, tableSize: UInt64?
        scan: for at in stride(from: 0, to: entries.count - 15, by: 16) {
            switch u64(entries, at) {
            case 0: break scan                               // DT_NULL
            case 1: names.append(u64(entries, at + 8))       // DT_NEEDED
            case 5: stringTable = u64(entries, at + 8)            // DT_STRTAB (an address)
            case 10: tableSize = u64(entries, at + 8)        // DT_STRSZ
            default: break
            }
        }
        guard let address = stringTable, let tableSize,
              let load = loads.first(where: { address >= $0.address && address - $0.address < $0.size }) else { return nil }
        let (offset, overflow) = load.offset.addingReportingOverflow(address - load.address)
        guard !overflow, let strings = read(offset, tableSize) else { return nil }
        return names.compactMap { start in
            guard start < UInt64(strings.count) else { return nil }
            return String(decoding: strings[Int(start)...].prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

@testable import BraneHost
import XCTest

final class FrameTests: XCTestCase {
    func testFramesSurviveArbitrarySplitting() throws {
        let frames = [Frame(type: .call, requestID: 1, payload: Array("hello".utf8)),
                      Frame(type: .result, requestID: 2, payload: []),
                      Frame(type: .log, requestID: 3, payload: [UInt8](repeating: 7, count: 70_000))]
        let stream = frames.flatMap { $0.encoded() }
        for chunk in [1, 5, 12, 13, 4096, stream.count] {
            var decoder = FrameDecoder(limit: 1 << 20)
            var decoded: [Frame] = []
            for start in stride(from: 0, to: stream.count, by: chunk) {
                decoder.append(stream[start..<min(start + chunk, stream.count)])
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            XCTAssertEqual(decoded, frames, "chunk size \(chunk)")
        }
    }

    func testOversizedFrameIsRejectedFromItsHeaderAlone() {
        var decoder = FrameDecoder(limit: 1024)
        decoder.append(Frame(type: .result, payload: [UInt8](repeating: 0, count: 2048)).encoded().prefix(12))
        XCTAssertThrowsError(try decoder.next()) { XCTAssertEqual($0 as? FrameError, .tooLarge(length: 2048, limit: 1024)) }
    }

    func testUnknownTypeIsRejected() {
        var decoder = FrameDecoder(limit: 1024)
        decoder.append([0, 0, 0, 0, 1, 0, 0, 0, 0xef, 0xbe, 0, 0])
        XCTAssertThrowsError(try decoder.next()) { XCTAssertEqual($0 as? FrameError, .unknownType(0xbeef)) }
    }

    func testShortControlPayloadsAreMalformedNotCrashes() {
        XCTAssertThrowsError(try FilteredReport(payload: [1, 2, 3]))
        XCTAssertThrowsError(try ReadyReport(payload: [1, 2, 3]))
        XCTAssertThrowsError(try ReadyReport(payload: [3, 0, 0, 0, 1, 0, 1, 0, 9, 0, 0x31]), "version shorter than its length")
        XCTAssertThrowsError(try SetupFailure(payload: [1]))
        XCTAssertThrowsError(try PluginLogLine(payload: []))
    }
}

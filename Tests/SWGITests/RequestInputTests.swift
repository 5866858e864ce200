import Testing
@testable import SWGI

/// A source that hands out at most `step` bytes per read, then maybe fails.
final class DribbleSource: InputSource {
    let bytes: [UInt8]
    let step: Int
    let failAt: Int?
    var offset = 0
    var reads = 0

    init(_ text: String, step: Int, failAt: Int? = nil) {
        bytes = Array(text.utf8)
        self.step = step
        self.failAt = failAt
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        reads += 1
        if let failAt, offset >= failAt { throw SWGIError(.inputFailed, "client gone") }
        let n = min(step, buffer.count, bytes.count - offset)
        for i in 0..<n { buffer[i] = bytes[offset + i] }
        offset += n
        return n
    }
}

@Suite struct RequestInputTests {
    @Test func readCountLoopsUntilSatisfied() throws {
        let input = RequestInput(source: DribbleSource("hello world", step: 3))
        #expect(try input.read(5) == Array("hello".utf8))
        #expect(try input.read() == Array(" world".utf8))
        #expect(try input.read() == [])
        #expect(try input.read(10) == [])
    }

    @Test func readLinesAcrossBlocks() throws {
        let input = RequestInput(source: DribbleSource("a\nbb\n\nlast", step: 2))
        #expect(try input.readLine() == Array("a\n".utf8))
        #expect(try input.readLine() == Array("bb\n".utf8))
        #expect(try input.readLine() == Array("\n".utf8))
        #expect(try input.readLine() == Array("last".utf8))
        #expect(try input.readLine() == nil)
    }

    @Test func readLineLimitLeavesTheRest() throws {
        let input = RequestInput(source: DribbleSource("abcdefgh\nxy", step: 100))
        #expect(try input.readLine(limit: 3) == Array("abc".utf8))
        #expect(try input.readLine() == Array("defgh\n".utf8))
        #expect(try input.read(1) == Array("x".utf8))
        #expect(try input.readLine() == Array("y".utf8))
    }

    @Test func mixingReadAndReadLine() throws {
        let input = RequestInput(bytes: Array("line1\nrest of it".utf8))
        #expect(try input.readLine() == Array("line1\n".utf8))
        #expect(try input.read(4) == Array("rest".utf8))
        #expect(try input.readLines() == [Array(" of it".utf8)])
    }

    @Test func iterationYieldsLines() {
        let input = RequestInput(bytes: Array("x\ny\nz".utf8))
        #expect(Array(input).map { String(decoding: $0, as: UTF8.self) } == ["x\n", "y\n", "z"])
    }

    @Test func errorsAreKeptAndRethrown() throws {
        let input = RequestInput(source: DribbleSource("abcdef", step: 2, failAt: 4))
        #expect(try input.read(4) == Array("abcd".utf8))
        #expect(throws: SWGIError.self) { try input.read(1) }
        #expect(throws: SWGIError.self) { try input.readLine() }
        #expect(input.error != nil)
    }

    @Test func iterationStopsAtAnErrorAndRecordsIt() {
        let input = RequestInput(source: DribbleSource("a\nb\nccc", step: 4, failAt: 4))
        let lines = Array(input)
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["a\n", "b\n"])
        #expect(input.error != nil)
    }

    @Test func largeBodyIsReadInBoundedBlocks() throws {
        let source = DribbleSource(String(repeating: "x", count: 300_000), step: 1 << 20)
        let input = RequestInput(source: source)
        var total = 0
        while case let block = try input.read(10_000), !block.isEmpty { total += block.count }
        #expect(total == 300_000)
    }

    @Test func readIntoABufferTakesBufferedBytesFirstThenTheSource() throws {
        let input = RequestInput(source: DribbleSource("line\nabcdefghij", step: 3))
        #expect(try input.readLine() == Array("line\n".utf8))  // buffers some of what follows
        var out = [UInt8](repeating: 0, count: 8)
        let n = try out.withUnsafeMutableBytes { try input.read(into: $0) }
        #expect(n == 8 && out == Array("abcdefgh".utf8))
        let m = try out.withUnsafeMutableBytes { try input.read(into: $0) }
        #expect(m == 2 && Array(out[0..<2]) == Array("ij".utf8))
        #expect(try out.withUnsafeMutableBytes { try input.read(into: $0) } == 0)
    }

    @Test func directReadsStopAtTheEndAndKeepErrors() throws {
        // Nothing buffered: read(n) fills its array straight from the source.
        let input = RequestInput(source: DribbleSource("abcdefg", step: 2))
        #expect(try input.read(5) == Array("abcde".utf8))
        #expect(try input.read(5) == Array("fg".utf8))
        #expect(try input.read(5) == [])
        let failing = RequestInput(source: DribbleSource("abcdef", step: 2, failAt: 2))
        #expect(throws: SWGIError.self) { try failing.read(4) }
        #expect(throws: SWGIError.self) { try failing.read(1) }
    }
}

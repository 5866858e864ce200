import Testing
@testable import SWGI

@Suite struct GatewayTests {
    @Test func helloGetsContentLengthAndOneUnflushedWrite() {
        let app = App { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            return ["Hello world!\n"]
        }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .completed)
        #expect(t.text == "Hello world!\n")
        #expect(t.header("Content-Length") == "13")
        #expect(t.flushes == [false])
        #expect(log.isEmpty)
    }

    @Test func streamedBodyFlushesEachChunkAndHasNoContentLength() {
        let app = App { _, start in
            try start("200 OK", [("Content-Type", "text/plain")])
            var n = 0
            return Body(next: {
                n += 1
                return n <= 3 ? "c\(n)" : nil
            })
        }
        let (outcome, t, _) = serve(app)
        #expect(outcome == .completed)
        #expect(t.text == "c1c2c3")
        #expect(t.flushes == [true, true, true])
        #expect(t.header("Content-Length") == nil)
    }

    @Test func headWaitsForTheFirstNonEmptyChunk() {
        let transport = RecordingTransport()
        let app = App { _, start in
            try start("200 OK", [])
            var n = 0
            return Body(next: {
                n += 1
                // The head must not have left before the first non-empty chunk.
                if n < 3 { #expect(transport.head == nil); return "" }
                return n == 3 ? "x" : nil
            })
        }
        let (outcome, t, _) = serve(app, transport: transport)
        #expect(outcome == .completed)
        #expect(t.events == ["head 200", "body 1"])
    }

    @Test func emptyBodySendsTheHeadAtTheEnd() {
        let app = App { _, start in
            try start("204 No Content", [])
            return []
        }
        let (outcome, t, _) = serve(app)
        #expect(outcome == .completed)
        #expect(t.events == ["head 204"])
        #expect(t.header("Content-Length") == nil)
    }

    @Test func closeIsCalledExactlyOnceOnEveryPath() {
        struct Boom: Error {}
        for scenario in ["ok", "throws-mid-body", "client-gone", "short-length", "no-start"] {
            let counter = CloseCounter()
            let app = App { _, start in
                if scenario != "no-start" {
                    try start("200 OK", scenario == "short-length" ? [("Content-Length", "100")] : [])
                }
                var n = 0
                return Body(next: {
                    n += 1
                    if scenario == "throws-mid-body" && n == 2 { throw Boom() }
                    return n <= 3 ? "chunk" : nil
                }, onClose: counter.close)
            }
            let transport = RecordingTransport()
            if scenario == "client-gone" { transport.failAfterWrites = 1 }
            _ = serve(app, transport: transport)
            #expect(counter.count == 1, "close() count for \(scenario)")
        }
    }

    @Test func throwBeforeHeadersIsA500WithNothingSent() {
        struct Boom: Error {}
        let app = App { _, _ in throw Boom() }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: false))
        #expect(t.events.isEmpty)
        #expect(log.count == 1)
        #expect(log[0].contains("Boom"))
    }

    @Test func throwAfterHeadersIsReportedAsCut() {
        struct Boom: Error {}
        let app = App { _, start in
            try start("200 OK", [])
            var n = 0
            return Body(next: {
                n += 1
                if n == 2 { throw Boom() }
                return "partial"
            })
        }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: true))
        #expect(t.text == "partial")
        #expect(log.count == 1 && log[0].contains("connection cut"))
    }

    @Test func secondStartWithoutExcInfoFails() {
        let app = App { _, start in
            try start("200 OK", [])
            try start("500 Oops", [])
            return ["x"]
        }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: false))
        #expect(t.events.isEmpty)
        #expect(log.first?.contains("second time") == true)
    }

    @Test func excInfoReplacesAHeadNotYetSent() {
        struct Oops: Error {}
        let app = App { _, start in
            try start("200 OK", [("X-First", "1")])
            try start("500 Internal Server Error", [("X-Second", "2")], excInfo: Oops())
            return ["error page"]
        }
        let (outcome, t, _) = serve(app)
        #expect(outcome == .completed)
        #expect(t.head?.status == 500)
        #expect(t.header("X-First") == nil)
        #expect(t.header("X-Second") == "2")
    }

    @Test func excInfoAfterHeadersSentRethrows() {
        struct Oops: Error {}
        let app = App { _, start in
            let write = try start("200 OK", [])
            try write("sent")
            do {
                try start("500 Internal Server Error", [], excInfo: Oops())
                Issue.record("start should have rethrown")
            } catch is Oops {
                throw Oops()
            }
            return []
        }
        let (outcome, t, _) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: true))
        #expect(t.head?.status == 200)
    }

    @Test func invalidHeaderNeverReachesTheTransport() {
        let app = App { _, start in
            try start("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")])
            return ["x"]
        }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: false))
        #expect(t.events.isEmpty)
        #expect(log.count == 1 && log[0].contains("X-Evil"))
    }

    @Test func bodyWithoutStartResponseFails() {
        let app = App { _, _ in ["x"] }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: false))
        #expect(t.events.isEmpty)
        #expect(log.first?.contains("startResponse") == true)
    }

    @Test func outputBeyondContentLengthIsCutAndLogged() {
        let app = App { _, start in
            try start("200 OK", [("Content-Length", "5")])
            return Body(["0123", "456789", "more"].lazy.map { Chunk($0) })
        }
        let (outcome, t, log) = serve(app)
        #expect(outcome == .completed)
        #expect(t.text == "01234")
        #expect(log.count == 1 && log[0].contains("Content-Length of 5"))
    }

    @Test func shortBodyIsAFailure() {
        let app = App { _, start in
            try start("200 OK", [("Content-Length", "10")])
            return Body(["01234"].lazy.map { Chunk($0) })
        }
        let (outcome, _, log) = serve(app)
        #expect(outcome == .failed(status: 500, headersSent: true))
        #expect(log.first?.contains("fewer than its Content-Length") == true)
    }

    @Test func headRequestMayDeclareALengthItDoesNotSend() {
        let app = App { _, start in
            try start("200 OK", [("Content-Length", "10")])
            return []
        }
        let (outcome, _, log) = serve(app, method: "HEAD")
        #expect(outcome == .completed)
        #expect(log.isEmpty)
    }

    @Test func clientDisconnectStopsTheBodyQuietly() {
        let asked = CloseCounter()
        let counter = CloseCounter()
        let app = App { _, start in
            try start("200 OK", [])
            return Body(next: {
                asked.count += 1
                return asked.count <= 100 ? "chunk" : nil
            }, onClose: counter.close)
        }
        let transport = RecordingTransport()
        transport.failAfterWrites = 2
        let (outcome, t, log) = serve(app, transport: transport)
        #expect(outcome == .clientDisconnected)
        #expect(t.flushes.count == 2)
        #expect(asked.count == 3)
        #expect(counter.count == 1)
        #expect(log.count == 1 && log[0].contains("disconnected"))
    }

    @Test func writeFunctionSendsImmediately() {
        let app = App { _, start in
            let write = try start("200 OK", [])
            try write("a")
            try write("")
            try write("b")
            return ["c"]
        }
        let (outcome, t, _) = serve(app)
        #expect(outcome == .completed)
        #expect(t.text == "abc")
        #expect(t.flushes == [true, true, false])
        // Bytes were written before the body: no Content-Length from the body alone.
    }

    @Test func errorsStreamLinesAreFlushedAtTheEnd() {
        let app = App { environ, start in
            environ.errors.write("one\ntw")
            environ.errors.write("o\nthree")
            try start("200 OK", [])
            return []
        }
        let (_, _, log) = serve(app)
        #expect(log == ["errors: one", "errors: two", "errors: three"])
    }
}

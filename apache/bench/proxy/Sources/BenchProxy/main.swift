// The proxied contestant of scripts/bench: the same bytes as the C handler,
// mod_swgi's and mod_wsgi's applications (apache/bench/), from a Hummingbird
// server on 127.0.0.1:PORT that Apache reaches with mod_proxy_http.
//
//   BenchProxy PORT
import HTTPTypes
import Hummingbird
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

let block = ByteBuffer(repeating: UInt8(ascii: "x"), count: 65536)
let hello = ByteBuffer(string: "Hello world!\n")
let plain: HTTPFields = [.contentType: "text/plain"]

guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
    print("usage: BenchProxy PORT")
    exit(2)
}

let router = Router()
router.get("/proxy/hello") { _, _ in
    Response(status: .ok, headers: plain, body: .init(byteBuffer: hello))
}
router.get("/proxy/environ") { request, _ in
    // The ten values the other contestants read from their environ, as a
    // proxied application finds them: in the request Apache forwarded.
    let path = request.uri.path
    let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    var values: [String] = [request.method.rawValue, "/proxy", String(path.dropFirst("/proxy".count)), "HTTP/1.1"]
    values.append(request.uri.query ?? "")
    values.append(request.head.authority ?? "")
    values.append(request.headers[.userAgent] ?? "")
    values.append(request.headers[forwardedFor] ?? "")
    values.append(String(port))
    values.append("127.0.0.1")
    // Joined by spaces into one 200-byte buffer, padded with dots, as the
    // Swift application of the other contestants does.
    var text = ByteBuffer()
    text.reserveCapacity(256)
    for (i, value) in values.enumerated() {
        if i > 0 { text.writeInteger(UInt8(ascii: " ")) }
        text.writeString(value)
    }
    if text.readableBytes > 199 { text.moveWriterIndex(to: text.readerIndex + 199) }
    text.writeRepeatingByte(UInt8(ascii: "."), count: 199 - text.readableBytes)
    text.writeInteger(UInt8(ascii: "\n"))
    return Response(status: .ok, headers: plain, body: .init(byteBuffer: text))
}
router.get("/proxy/stream") { _, _ in
    Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init { writer in
        for _ in 0..<16 { try await writer.write(block) }
        try await writer.finish(nil)
    })
}
router.post("/proxy/upload") { request, _ in
    Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(asyncSequence: request.body))
}
router.get("/proxy/headers") { _, _ in
    var headers = plain
    for i in 0..<10 { headers[HTTPField.Name("X-Bench-\(i)")!] = "value" }
    return Response(status: .ok, headers: headers, body: .init(byteBuffer: hello))
}

let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()

// "WSGI Tutorial": one handler per HTTP method; any other method gets
// 405 Method Not Allowed with an Allow header.
import SWGIBridge

struct DoGet: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        try startResponse("200 OK", [("Content-type", "text/plain; charset=utf-8")])
        return ["You sent a GET\n"]
    }
}

struct DoPost: Application {
    func callAsFunction(_ environ: Environ, _ startResponse: StartResponse) throws -> Body {
        let body = try environ.input.read(64 * 1024)
        try startResponse("200 OK", [("Content-type", "text/plain; charset=utf-8")])
        return ["You sent a POST of \(body.count) bytes\n"]
    }
}

@c(swgi_entry_application)
public func swgiEntry() -> UnsafeRawPointer {
    exportApplication(MethodDispatcher(["GET": DoGet(), "POST": DoPost()]))
}

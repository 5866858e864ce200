# mod_wsgi's side of scripts/bench: the same scenarios, the same bytes.
BLOCK = b"x" * 65536


def application(environ, start_response):
    scenario = environ.get("PATH_INFO", "").rsplit("/", 1)[-1]
    if scenario == "hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello world!\n"]
    if scenario == "environ":
        fields = [environ.get(k, "") for k in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "SERVER_PROTOCOL",
                                                "QUERY_STRING", "HTTP_HOST", "HTTP_USER_AGENT", "REMOTE_ADDR",
                                                "SERVER_PORT", "SERVER_NAME")]
        body = " ".join(fields).encode()[:199].ljust(199, b".") + b"\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "200")])
        return [body]
    if scenario == "stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (BLOCK for _ in range(16))
    if scenario == "upload":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        stream = environ["wsgi.input"]

        def echo():
            while True:
                block = stream.read(65536)
                if not block:
                    return
                yield block
        return echo()
    if scenario == "headers":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")]
                       + [("X-Bench-%d" % i, "value") for i in range(10)])
        return [b"Hello world!\n"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"unknown scenario\n"]

# A front for fake-gcs-server: GCS's XML API as object_store speaks it.
#
# Written by `cargo xtask` (xtask/src/gcs.rs). fake-gcs-server serves the
# XML API's reads, listings and deletes but has no XML upload
# (`PUT /{bucket}/{object}` answers 400 "invalid uploadType"). This front
# passes every request through unchanged but that one, which it makes the
# JSON API's media upload of the same bytes to the same object
# (`x-goog-if-generation-match` as `ifGenerationMatch`), answering as the
# XML API does: the object's ETag and generation in headers, no body.
import http.client
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = ("127.0.0.1", int(sys.argv[3]))
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-connection", "content-length"}


class Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self):
        """The request's body, whole; a client gone before the end of it
        raises, so no torn body is ever passed on."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline()
                if not line.endswith(b"\n"):
                    raise ConnectionError("the body ended early")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(parts)
                part = self.rfile.read(size)
                if len(part) != size:
                    raise ConnectionError("the body ended early")
                parts.append(part)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError("the body ended early")
        return data

    def forward(self, method, path, headers, body):
        upstream = http.client.HTTPConnection(*UPSTREAM, timeout=60)
        try:
            upstream.request(method, path, body=body, headers=headers)
            reply = upstream.getresponse()
            return reply.status, reply.getheaders(), reply.read()
        finally:
            upstream.close()

    def answer(self, status, headers, data):
        self.send_response(status)
        length = str(len(data))
        for name, value in headers:
            if name.lower() == "content-length" and self.command == "HEAD":
                # A HEAD's length is the object's, not its empty body's.
                length = value
            elif name.lower() not in HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def passed(self):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        self.answer(*self.forward(self.command, self.path, headers, self.body()))

    def do_PUT(self):
        url = urllib.parse.urlsplit(self.path)
        bucket, _, name = url.path.lstrip("/").partition("/")
        if not name or url.query:
            return self.passed()
        query = {"uploadType": "media", "name": urllib.parse.unquote(name)}
        match = self.headers.get("x-goog-if-generation-match")
        if match is not None:
            query["ifGenerationMatch"] = match
        headers = {"Content-Type": self.headers.get("Content-Type", "application/octet-stream")}
        path = f"/upload/storage/v1/b/{bucket}/o?" + urllib.parse.urlencode(query)
        status, reply_headers, data = self.forward("POST", path, headers, self.body())
        if status != 200:
            return self.answer(status, reply_headers, data)
        stored = json.loads(data)
        self.answer(200, [("ETag", '"%s"' % stored["md5Hash"]),
                          ("x-goog-generation", stored["generation"])], b"")

    do_GET = do_HEAD = do_POST = do_DELETE = passed

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    # http.server's backlog is 5: dozens of tests connecting at once had
    # connections refused and timed out ("looking up ...: retryable").
    request_queue_size = 256
    daemon_threads = True


Server((sys.argv[1], int(sys.argv[2])), Front).serve_forever()

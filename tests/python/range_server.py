"""A small HTTP server of files held in memory, for the tests of object URLs
as obj inputs (gust.lithops.objects): HEAD and GET, with one byte range
("Range: bytes=first-last", answered 206) as Lithops' workers ask it.

Why our own: http.server's SimpleHTTPRequestHandler ignores Range (it
answers 200 with the whole file), and the chunked reads need a server that
honours it. Its knobs make the servers gust.lithops must cope with: no
Accept-Ranges (one task per URL), no Content-Length (refused, naming the
URL), Range ignored although advertised (the task fails, naming the URL).

    with FileServer({"a.txt": b"..."}) as server:      # on 127.0.0.1
        urllib.request.urlopen(server.url("a.txt"))
    with FileServer(files, sock=lan_host.listen()):    # on a LAN host (examples/scrape/lan.py)
"""
import http.server
import re
import socket
import threading

RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class FileServer:
    """Context manager: serves files ({name: bytes}) at /<name> on sock (a
    listening socket) or a fresh one on 127.0.0.1, in a thread, until exit.
    requests lists (method, path, Range header or None) in arrival order."""

    def __init__(self, files, sock=None, accept_ranges=True, content_length=True,
                 honour_range=True):
        self.files = files
        self.accept_ranges = accept_ranges
        self.content_length = content_length
        self.honour_range = honour_range
        self.requests = []
        self._sock = sock if sock is not None else socket.create_server(("127.0.0.1", 0))
        self._server = None
        self._thread = None

    def url(self, name):
        host, port = self._sock.getsockname()[:2]
        return "http://%s:%d/%s" % (host, port, name)

    def __enter__(self):
        self._server = http.server.ThreadingHTTPServer(
            self._sock.getsockname()[:2], _handler(self), bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = self._sock
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler(server):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self._answer(send_body=False)

        def do_GET(self):
            self._answer(send_body=True)

        def _answer(self, send_body):
            rng = self.headers.get("Range")
            server.requests.append((self.command, self.path, rng))
            data = server.files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            first, last, status = 0, len(data) - 1, 200
            m = RANGE.match(rng or "")
            if m and server.honour_range and server.accept_ranges:
                first = int(m.group(1))
                last = min(int(m.group(2)) if m.group(2) else last, len(data) - 1)
                if first > last:
                    self.send_error(416)
                    return
                status = 206
            body = data[first:last + 1]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, len(data)))
            if server.accept_ranges:
                self.send_header("Accept-Ranges", "bytes")
            if server.content_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()  # HTTP/1.0: the connection closes after the body
            if send_body:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler

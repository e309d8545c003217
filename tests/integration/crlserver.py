"""A CRL server on loopback for the tests, which misbehaves on demand.

    /files/NAME      the file NAME of the directory given
    /404             404 Not Found
    /garbage         200 with a body that is no CRL
    /hang            accepts, then never answers (until the server stops)
    /big             200 with a body of 200,000 bytes
    /loop            302 to itself
    /redirect/NAME   302 to /files/NAME
    /drip            200 without a length, then a byte every half second
    /endless         200 without a length, then bytes as fast as they go
    /to-ftp          302 to an ftp:// URL
    /to-file         302 to file:///etc/passwd
    /to-localhost/NAME  302 to /files/NAME on http://localhost (another host name)
With certfile and keyfile it serves https with that certificate.
Every request is counted by path in `hits`."""

import http.server
import os
import ssl
import threading
import time


class CrlServer:
    def __init__(self, directory, certfile=None, keyfile=None):
        self.directory = directory
        self.hits = {}
        self.stopping = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, code, body=b"", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                p = self.path
                if p.startswith("/files/"):
                    path = os.path.join(outer.directory, os.path.basename(p[len("/files/"):]))
                    if os.path.isfile(path):
                        with open(path, "rb") as f:
                            return self.reply(200, f.read())
                    return self.reply(404, b"no such file")
                if p == "/404":
                    return self.reply(404, b"not found")
                if p == "/garbage":
                    return self.reply(200, b"this is not a CRL")
                if p == "/hang":
                    outer.stopping.wait(120)
                    return
                if p == "/big":
                    return self.reply(200, b"x" * 200000)
                if p == "/loop":
                    return self.reply(302, b"", {"Location": "/loop"})
                if p in ("/drip", "/endless"):
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        while not outer.stopping.is_set():
                            if p == "/drip":
                                self.wfile.write(b"-")
                                self.wfile.flush()
                                outer.stopping.wait(0.5)
                            else:
                                self.wfile.write(b"-" * 65536)
                    except OSError:
                        pass
                    return
                if p == "/to-ftp":
                    return self.reply(302, b"", {"Location": "ftp://127.0.0.1/crl.pem"})
                if p == "/to-file":
                    return self.reply(302, b"", {"Location": "file:///etc/passwd"})
                if p.startswith("/to-localhost/"):
                    return self.reply(302, b"", {"Location": "http://localhost:%d/files/%s" % (
                        outer.port, p[len("/to-localhost/"):])})
                if p.startswith("/redirect/"):
                    return self.reply(302, b"", {"Location": "/files/" + p[len("/redirect/"):]})
                return self.reply(404, b"unknown")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

#!/usr/bin/env python3
"""s3-sigv4-proxy: checks every request's AWS Signature V4 with botocore's
signer (an implementation independent of libcurl's), then forwards it to an
S3 server.  s3rver, the test server, checks no V4 signature at all, and a
request curl signs differently from S3 would pass it and fail on a real
store; through this proxy it fails in the test.

    s3-sigv4-proxy.py UPSTREAM_PORT ACCESS_KEY SECRET_KEY [REGION]

Listens on 127.0.0.1, a port of the kernel's choosing, and prints
"listening on 127.0.0.1:PORT".  A bad signature is answered 403
SignatureDoesNotMatch, a body whose SHA-256 is not its
x-amz-content-sha256 400 XAmzContentSHA256Mismatch, as S3 answers them;
each is logged as a line starting "REFUSED".
"""
import hashlib
import http.client
import http.server
import sys

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

UPSTREAM = int(sys.argv[1])
CREDS = Credentials(sys.argv[2], sys.argv[3])
REGION = sys.argv[4] if len(sys.argv) > 4 else "us-east-1"


class Signer(S3SigV4Auth):
    """botocore's S3 signer, told which headers the client signed."""

    def __init__(self, signed):
        super().__init__(CREDS, "s3", REGION)
        self.signed = signed

    def headers_to_sign(self, request):
        h = HTTPHeaders()
        for k in self.signed:
            h[k] = request.headers[k]
        return h


def error(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s"
            "</Code><Message>%s</Message></Error>" % (code, message)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "date",
                                 "server", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def check(self, body):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "AccessDenied", "not signed with SigV4"
        fields = dict(f.strip().split("=", 1)
                      for f in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        signed = fields["SignedHeaders"].split(";")
        for need in ("host", "x-amz-content-sha256", "x-amz-date"):
            if need not in signed:
                return "AccessDenied", "%s not signed" % need
        if fields["Credential"].split("/")[0] != CREDS.access_key:
            return "InvalidAccessKeyId", "unknown key"
        req = AWSRequest(method=self.command,
                         url="http://%s%s" % (self.headers["Host"], self.path),
                         data=body, headers=dict(self.headers))
        req.context["timestamp"] = self.headers["X-Amz-Date"]
        s = Signer(signed)
        want = s.signature(s.string_to_sign(req, s.canonical_request(req)),
                           req)
        if want != fields["Signature"]:
            return "SignatureDoesNotMatch", "signature differs"
        payload = self.headers["x-amz-content-sha256"]
        if (payload != "UNSIGNED-PAYLOAD" and
                payload != hashlib.sha256(body).hexdigest()):
            return "XAmzContentSHA256Mismatch", "body differs from its hash"
        return None, None

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        code, why = self.check(body)
        if code is not None:
            print("REFUSED %s %s %s: %s" % (self.command, self.path, code, why),
                  flush=True)
            self.answer(400 if code.startswith("XAmz") else 403,
                        [("Content-Type", "application/xml")],
                        error(code, why))
            return
        print("ok %s %s" % (self.command, self.path), flush=True)
        up = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        try:
            up.request(self.command, self.path,
                       body=body if self.command in ("PUT", "POST") else None,
                       headers={k: v for k, v in self.headers.items()
                                if k.lower() != "expect"})
            r = up.getresponse()
            data = r.read()
            headers = r.getheaders()
            if self.command == "HEAD":
                # Keep the object's length for the client.
                self.send_response(r.status)
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection",
                                         "date", "server"):
                        self.send_header(k, v)
                self.end_headers()
                return
            self.answer(r.status, headers, data)
        except OSError as e:
            self.answer(503, [("Content-Type", "application/xml")],
                        error("ServiceUnavailable", str(e)))
        finally:
            up.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()

"""UrllibTransport against a loopback HTTP server: JSON both ways, problems, network failures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sync_protocol.transport import TransportError, UrllibTransport

SEEN: list[dict[str, object]] = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        SEEN.append({"path": self.path, "body": raw, "headers": dict(self.headers)})
        if self.path == "/ok":
            echo = json.dumps({"got": json.loads(raw)}, ensure_ascii=False).encode()
            self._answer(200, echo, "application/json")
        elif self.path == "/problem":
            doc = {"status": 409, "code": "mutation_gap", "expected_id": 10}
            self._answer(409, json.dumps(doc).encode(), "application/problem+json")
        elif self.path == "/html":
            self._answer(502, b"<html>bad gateway</html>", "text/html", **{"Retry-After": "7"})
        elif self.path == "/redirect":
            self._answer(307, b"", "text/plain", Location="/ok")
        elif self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"partial":')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_json_in_and_out(base_url: str) -> None:
    transport = UrllibTransport(base_url, timeout=5)
    answer = transport.request("POST", "/ok", {"text": "张伟", "n": 1}, {"X-Xuncha-App": "1.4.2"})
    assert answer.status == 200
    assert answer.body == {"got": {"text": "张伟", "n": 1}}
    assert answer.headers["content-type"] == "application/json"
    sent = SEEN[-1]
    assert sent["body"] == '{"text":"张伟","n":1}'.encode()  # compact UTF-8, as measured
    headers = sent["headers"]
    assert isinstance(headers, dict) and headers["X-Xuncha-App"] == "1.4.2"
    assert headers["Content-Type"].startswith("application/json")


def test_error_statuses_are_answers_not_exceptions(base_url: str) -> None:
    transport = UrllibTransport(base_url, timeout=5)
    problem = transport.request("POST", "/problem", {}, {})
    assert (problem.status, problem.body) == (
        409,
        {"status": 409, "code": "mutation_gap", "expected_id": 10},
    )
    html = transport.request("POST", "/html", {}, {})
    assert (html.status, html.body, html.headers["retry-after"]) == (
        502,
        "<html>bad gateway</html>",
        "7",
    )


def test_redirects_are_not_followed(base_url: str) -> None:
    # Following would turn the POST into something else; the client sees the 307 instead.
    assert UrllibTransport(base_url, timeout=5).request("POST", "/redirect", {}, {}).status == 307


def test_network_failures_raise_transport_error(base_url: str) -> None:
    with pytest.raises(TransportError):
        UrllibTransport(base_url, timeout=5).request("POST", "/truncated", {}, {})
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError):
        UrllibTransport(f"http://127.0.0.1:{port}", timeout=2).request("POST", "/ok", {}, {})


def test_base_url_must_be_http() -> None:
    for url in ("ftp://x", "xc.example.gov.cn", "file:///etc/passwd"):
        with pytest.raises(ValueError):
            UrllibTransport(url)

"""etcd for the tests: puts and deletes through a real etcd's v3 JSON gateway (the test's own client,
not the tool's), and a stand-in gateway for unit tests that serves /v3/kv/range from a dict."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _post(endpoint: str, path: str, body: dict) -> dict:
    url = (endpoint if "://" in endpoint else f"http://{endpoint}").rstrip("/") + path
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read().decode())


def etcd_put(endpoint: str, key: str, value: str) -> None:
    _post(endpoint, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})


def etcd_delete(endpoint: str, key: str) -> None:
    _post(endpoint, "/v3/kv/deleterange", {"key": _b64(key)})


def etcd_get(endpoint: str, key: str) -> str | None:
    kvs = _post(endpoint, "/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def etcd_range(endpoint: str, prefix: str) -> dict[str, bytes]:
    """Every key under `prefix` and its value (a prefix ending before 0xFF, as Milvus's do)."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    kvs = _post(endpoint, "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end)}).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")) for kv in kvs}


@contextmanager
def fake_etcd(data: dict[str, str]) -> Iterator[str]:
    """A stand-in gateway answering /v3/kv/range from `data`, in key order like etcd; yields host:port."""

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            start = base64.b64decode(body["key"]).decode()
            end = base64.b64decode(body.get("range_end", "")).decode() or start + "\0"
            kvs = [{"key": _b64(k), "value": _b64(v)} for k, v in sorted(data.items()) if start <= k < end]
            reply = json.dumps({"kvs": kvs} if kvs else {}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

"""flush-all waits for the datanode: a FlushAll before datacoord heard the replayed rows drops them
(docs/milvus.md, FlushAll). The wait reads datacoord's metrics page; here a real HTTP server serves
pages as Milvus 2.3.5 writes them, and the collections' channels are given."""

from __future__ import annotations

import http.server
import threading
from types import SimpleNamespace

import pytest

from migrator.migration.steps.flush_all import DatanodeBehind, wait_for_datanode

LAG = "milvus_datacoord_consume_datanode_tt_lag_ms"


class _Pages:
    def __init__(self, *pages: str) -> None:
        self.pages, self.served = list(pages), 0

    def next(self) -> str:
        page = self.pages[min(self.served, len(self.pages) - 1)]
        self.served += 1
        return page


@pytest.fixture
def metrics():
    pages = _Pages("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.next().encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _page(**lags_ms: float) -> str:
    return "".join(f'{LAG}{{channel_name="by-dev-rootcoord-dml_0_{cid}v0",node_id="4"}} {ms}\n'
                   for cid, ms in ((int(key[1:]), value) for key, value in lags_ms.items()))


def _wait(url: str, deadline_s: float) -> str:
    ctx = SimpleNamespace(runtime=SimpleNamespace(metrics_url=url), exempt_source=None)
    channels = SimpleNamespace(collection_channels=lambda: {"default.docs": (101, 1), "shop.items": (102, 1)})
    return wait_for_datanode(ctx, channels, deadline_s)


def test_returns_once_every_channel_has_a_recent_tick(metrics) -> None:
    pages, url = metrics
    pages.pages = [_page(c101=40_000, c102=900), _page(c101=1_200, c102=800)]
    assert "caught up with 2 channels" in _wait(url, 10)
    assert pages.served == 2


def test_a_channel_left_behind_is_named_with_what_was_seen(metrics) -> None:
    pages, url = metrics
    pages.pages = [_page(c101=45_000)]
    with pytest.raises(DatanodeBehind) as caught:
        _wait(url, 0.6)
    message = str(caught.value)
    assert "default.docs (a channel's last time tick 45 s old)" in message
    assert "shop.items (no time tick from its channels yet)" in message

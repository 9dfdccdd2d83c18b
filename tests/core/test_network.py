"""The one network probe: offline variables short-circuit it, silent hosts time out, answers are remembered."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from fashiontag.core import network


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    for var in network.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(network, "_answers", {})


def test_offline_variable_means_offline_without_a_probe(monkeypatch):
    def no_probe(*_a, **_k):
        raise AssertionError("probed although an offline variable is set")

    monkeypatch.setattr(network, "reachable", no_probe)
    monkeypatch.setenv("FASHIONTAG_OFFLINE", "1")
    assert network.offline_reason() == "FASHIONTAG_OFFLINE=1"
    assert network.is_online("http://127.0.0.1:1") is False
    monkeypatch.setenv("FASHIONTAG_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    assert network.offline_reason() == "HF_HUB_OFFLINE=1"


def test_silent_server_times_out_and_the_answer_is_remembered():
    with socket.socket() as server:  # accepts connections (backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/api"
        start = time.monotonic()
        assert network.reachable(url, timeout=0.5) is False
        assert time.monotonic() - start < 5
        start = time.monotonic()
        assert network.is_online(url) is False  # remembered per host: no second wait
        assert time.monotonic() - start < 0.2


def test_any_http_answer_counts_as_reachable():
    class Teapot(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - the http.server method name
            self.send_response(418)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Teapot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert network.is_online(f"http://127.0.0.1:{server.server_address[1]}/anything") is True
    finally:
        server.shutdown()
        server.server_close()


def test_refused_connection_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    assert network.reachable(f"http://127.0.0.1:{port}", timeout=2.0) is False

"""A transport plugin, installed as a distribution with a `grounded.transports` entry point, serves
a model prefix for a whole run: no litellm global is touched."""

from __future__ import annotations

import json

from fakes import PIPELINE_DOCS
from plugin_dist import install_plugin

import grounded
from grounded.jsonl import read_jsonl
from grounded.llm import LiteLLMTransport, transport_for
from grounded.llm.transport import TRANSPORTS

PLUGIN = """
from fakes import pipeline_responder
from grounded.llm import Response, register_transport

CALLS = []


class EchoTransport:
    async def handle_request(self, request):
        CALLS.append(request.model)
        return Response(pipeline_responder(list(request.messages)), 40, 20)


register_transport("plugecho", EchoTransport)
"""


def test_a_transport_plugin_serves_its_prefix_through_a_run(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    install_plugin(
        tmp_path / "site",
        monkeypatch,
        group="grounded.transports",
        module="echo_transport",
        source=PLUGIN,
    )
    TRANSPORTS.load_plugins(again=True)
    try:
        import echo_transport

        summary = grounded.run(
            [PIPELINE_DOCS],
            out=tmp_path / "out",
            model="plugecho/m",
            n=4,
            chunk_tokens=64,
            overlap_tokens=0,
            embedder="fast",
        )
        assert summary.kept >= 1 and echo_transport.CALLS
        assert set(echo_transport.CALLS) == {"plugecho/m"}
        rows = list(read_jsonl(tmp_path / "out" / "qa.jsonl"))
        assert {r["provenance"]["model"] for r in rows} == {"plugecho/m"}
        assert json.loads((tmp_path / "out" / "summary.json").read_text())["llm_calls"] >= 1
    finally:
        TRANSPORTS.unregister("plugecho")
    assert isinstance(transport_for("plugecho/m"), LiteLLMTransport)

"""The MCP server driven by the official MCP Python SDK: `onebit mcp` over stdio and `/mcp` on `onebit serve` over
streamable HTTP, with and without an API key.

Every tool is listed with input and output schemas and called; its structuredContent must validate against its
outputSchema and match the JSON of its text content. An unknown tool and bad arguments must come back as errors.
Over HTTP also: protocol versions, session end, Origin and Host checks, SSE heartbeats on a long call, and a
client that disconnects mid-call stopping its generation.
"""

import asyncio
import json
import os
import subprocess
import tempfile
import time

import httpx2
import jsonschema
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from running_server import BINARY, ROOT, RunningServer

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "models", "hf-256")
MODEL_ARGS = ["--model", MODEL, "--ctx", "256", "--device", "cpu"]

# Reports of the specialists the tests run go to a folder of their own, not the user's configuration.
CONFIG = tempfile.mkdtemp(prefix="onebit-mcp-test-")
os.environ["ONEBIT_CONFIG_DIR"] = CONFIG

SPECIALISTS = ["magistrate", "librarian", "quartermaster", "anvil", "sentinel", "scribe"]
TOOLS = [
    "chat", "complete", "tokenize", "score", "perplexity", "model_info", "health",
    *SPECIALISTS, "list_reports", "get_report",
]

# One successful call of every tool.
CALLS = [
    ("chat", {"prompt": "Hello", "max_tokens": 8, "seed": 1}),
    ("chat", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0}),
    (
        "chat",
        {
            "prompt": "Answer in JSON",
            "max_tokens": 48,
            "temperature": 0,
            "json_schema": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
                "required": ["ok", "n"],
            },
        },
    ),
    ("complete", {"prompt": "To be, or not to be", "max_tokens": 8, "temperature": 0}),
    ("tokenize", {"text": "To be, or not to be"}),
    ("score", {"text": "To be, or not to be"}),
    ("perplexity", {"text": "To be, or not to be"}),
    ("model_info", {}),
    ("health", {}),
    ("quartermaster", {"title": "Crash when loading a GGUF file", "body": "The server crashes with a stack trace."}),
    ("scribe", {"text": "The model runs on the CPU. It also runs on the GPU. Both give the same tokens.", "sentences": 1}),
    ("list_reports", {"limit": 5}),
]

# Bad arguments, and the argument each error message must name.
BAD_CALLS = [
    ("tokenize", {"text": 5}, "text"),
    ("chat", {}, "messages"),
    ("chat", {"prompt": "a", "max_tokens": 0}, "max_tokens"),
    ("chat", {"prompt": "a", "temprature": 1}, "temprature"),
    ("score", {"text": "word " * 400}, "text"),
    ("quartermaster", {"body": "no title"}, "title"),
    ("get_report", {"id": "no-such-report"}, "id"),
]


async def exercise(session: ClientSession) -> None:
    """Lists the tools, calls each one, and checks the errors; the same for every transport."""
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert list(tools) == TOOLS
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)

    for name, arguments in CALLS:
        result = await session.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)
        jsonschema.validate(result.structured_content, tools[name].output_schema)
        assert json.loads(result.content[0].text) == result.structured_content
        if "json_schema" in arguments:
            jsonschema.validate(result.structured_content["json"], arguments["json_schema"])

    info = (await session.call_tool("model_info", {})).structured_content
    assert info["id"] == "hf-256" and info["context_length"] == 256 and info["device"] == "CPU"
    ids = (await session.call_tool("tokenize", {"text": "To be"})).structured_content
    assert ids["count"] == len(ids["ids"]) > 0

    reports = (await session.call_tool("list_reports", {"specialist": "quartermaster"})).structured_content["reports"]
    assert reports and reports[0]["specialist"] == "quartermaster"
    report = await session.call_tool("get_report", {"id": reports[0]["id"]})
    assert not report.is_error and report.structured_content["id"] == reports[0]["id"]
    jsonschema.validate(report.structured_content, tools["get_report"].output_schema)

    with pytest.raises(MCPError, match="no_such_tool"):
        await session.call_tool("no_such_tool", {})
    for name, arguments, argument in BAD_CALLS:
        result = await session.call_tool(name, arguments)
        assert result.is_error, (name, arguments)
        assert f"'{argument}'" in result.content[0].text, result.content[0].text


def test_stdio():
    async def run():
        params = StdioServerParameters(
            command=BINARY, args=["mcp", *MODEL_ARGS], env={"ONEBIT_CONFIG_DIR": CONFIG}
        )
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await exercise(session)

    asyncio.run(run())


def test_stdio_answers_what_it_read_then_exits_when_stdin_closes():
    process = subprocess.Popen(
        [BINARY, "mcp", *MODEL_ARGS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "complete", "arguments": {"prompt": "To be", "max_tokens": 64, "temperature": 0}},
        },
    ]
    # Everything at once, then end of input: the generation still running must be answered before the exit.
    stdout, _ = process.communicate("".join(json.dumps(m) + "\n" for m in messages).encode(), timeout=60)
    assert process.returncode == 0
    answers = {answer["id"]: answer for answer in map(json.loads, stdout.decode().splitlines())}
    assert answers[1]["result"]["protocolVersion"] == "2025-06-18"
    assert answers[2]["result"]["isError"] is False, answers[2]
    assert answers[2]["result"]["structuredContent"]["usage"]["completion_tokens"] > 0


class Server(RunningServer):
    """A running `onebit serve`; it must stop cleanly."""

    def __init__(self, *extra: str, model_args: list[str] = MODEL_ARGS):
        super().__init__([*model_args, *extra])

    def stop(self):
        assert super().stop() == 0


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def demo_server():
    """The built-in model, slow enough in a debug build that a long generation spans several SSE heartbeats."""
    s = Server(model_args=["--ctx", "4096", "--device", "cpu"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keyed_server():
    s = Server("--api-key", "secret")
    yield s
    s.stop()


async def over_http(url: str, headers: dict | None = None) -> None:
    async with httpx2.AsyncClient(headers=headers or {}, timeout=120) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await exercise(session)


def test_streamable_http(server):
    asyncio.run(over_http(server.url))


def test_streamable_http_with_api_key(keyed_server):
    asyncio.run(over_http(keyed_server.url, {"Authorization": "Bearer secret"}))


def test_streamable_http_refuses_a_missing_or_wrong_key(keyed_server):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        reply = httpx2.post(keyed_server.url + "/mcp", headers=headers | JSON_HEADERS, json=initialize("2025-06-18"))
        assert reply.status_code == 401
    with pytest.raises(Exception):
        asyncio.run(over_http(keyed_server.url))


JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def initialize(version: str) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }


def sse_message(body: str) -> dict:
    """The JSON-RPC message of an SSE answer (the stream also carries an empty priming event)."""
    payloads = [line[len("data: ") :] for line in body.splitlines() if line.startswith("data: ") and line != "data: "]
    assert len(payloads) == 1, body
    return json.loads(payloads[0])


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
def test_protocol_versions_clients_use_are_negotiated(server, version):
    reply = httpx2.post(server.url + "/mcp", headers=JSON_HEADERS, json=initialize(version))
    assert reply.status_code == 200
    assert sse_message(reply.text)["result"]["protocolVersion"] == version
    session = reply.headers["Mcp-Session-Id"]
    headers = JSON_HEADERS | {"Mcp-Session-Id": session, "MCP-Protocol-Version": version}
    listed = httpx2.post(server.url + "/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert [tool["name"] for tool in sse_message(listed.text)["result"]["tools"]] == TOOLS
    assert httpx2.delete(server.url + "/mcp", headers=headers).status_code == 200
    gone = httpx2.post(server.url + "/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    assert gone.status_code == 404


def test_a_foreign_origin_or_host_is_refused_on_loopback(server):
    reply = httpx2.post(
        server.url + "/mcp", headers=JSON_HEADERS | {"Origin": "http://evil.example"}, json=initialize("2025-06-18")
    )
    assert reply.status_code == 403
    port = server.url.rsplit(":", 1)[1]
    reply = httpx2.post(
        server.url + "/mcp", headers=JSON_HEADERS | {"Host": f"evil.example:{port}"}, json=initialize("2025-06-18")
    )
    assert reply.status_code == 421
    local_origin = JSON_HEADERS | {"Origin": f"http://localhost:{port}"}
    local = httpx2.post(server.url + "/mcp", headers=local_origin, json=initialize("2025-06-18"))
    assert local.status_code == 200


def stats(server) -> dict:
    return httpx2.get(server.url + "/stats").json()


LONG_CALL = {"name": "complete", "arguments": {"prompt": "Once", "max_tokens": 3000, "seed": 3}}


def test_a_long_call_carries_heartbeats_the_sdk_client_skips(demo_server):
    reply = httpx2.post(demo_server.url + "/mcp", headers=JSON_HEADERS, json=initialize("2025-06-18"))
    headers = JSON_HEADERS | {"Mcp-Session-Id": reply.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-06-18"}
    started = time.monotonic()
    raw = httpx2.post(
        demo_server.url + "/mcp",
        headers=headers,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": LONG_CALL},
        timeout=120,
    )
    if time.monotonic() - started < 1.5:
        pytest.skip("the generation ended before the first heartbeat was due (a fast build)")
    assert ": keep-alive\n\n" in raw.text
    assert sse_message(raw.text)["result"]["isError"] is False

    async def run():
        async with streamable_http_client(demo_server.url + "/mcp") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool(LONG_CALL["name"], LONG_CALL["arguments"])

    result = asyncio.run(run())
    assert not result.is_error
    assert result.structured_content["usage"]["completion_tokens"] == 3000


def test_a_client_that_disconnects_stops_its_generation(demo_server):
    reply = httpx2.post(demo_server.url + "/mcp", headers=JSON_HEADERS, json=initialize("2025-06-18"))
    headers = JSON_HEADERS | {"Mcp-Session-Id": reply.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-06-18"}
    before = stats(demo_server)["generated_tokens"]
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": LONG_CALL}
    with pytest.raises(httpx2.TimeoutException):
        httpx2.post(demo_server.url + "/mcp", headers=headers, json=call, timeout=0.5)
    deadline = time.monotonic() + 30
    while stats(demo_server)["running"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stats(demo_server)["running"] == 0
    # Left alone, this prompt and seed generate all 3,000 tokens (about 4 s in a debug build).
    assert stats(demo_server)["generated_tokens"] - before < 3000


def test_an_open_sse_stream_does_not_hold_up_shutdown():
    s = Server()
    reply = httpx2.post(s.url + "/mcp", headers=JSON_HEADERS, json=initialize("2025-06-18"))
    headers = {"Accept": "text/event-stream", "Mcp-Session-Id": reply.headers["Mcp-Session-Id"]}
    with httpx2.stream("GET", s.url + "/mcp", headers=headers, timeout=30) as stream:
        assert stream.status_code == 200
        s.stop()

"""`onebit serve` driven by the official ollama Python client, as apps that speak Ollama's API use it.

Starts the server on the committed hf-256 fixture on a free port, then lists and shows the model, chats and generates
with and without streaming (sync and async clients, several streams at once) and checks the errors the client turns
into exceptions.
"""

import asyncio
import json
import os
import threading
import urllib.request

import ollama
import pytest
from running_server import ROOT, RunningServer

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "models", "hf-256")
GREEDY = {"num_predict": 12, "temperature": 0}


@pytest.fixture(scope="module")
def server():
    running = RunningServer(["--model", MODEL, "--ctx", "512", "--max-concurrency", "8"])
    yield running
    assert running.stop() == 0


@pytest.fixture
def client(server):
    return ollama.Client(host=server.url)


def test_the_model_is_listed_shown_and_running(server, client):
    names = [m.model for m in client.list().models]
    assert names == ["hf-256:latest"]
    assert [m.model for m in client.ps().models] == ["hf-256:latest"]
    shown = client.show("hf-256")
    assert shown.details.family == "bitnet" and "completion" in shown.capabilities
    with urllib.request.urlopen(server.url + "/api/version", timeout=10) as response:
        assert json.load(response)["version"]


def test_chat_streamed_adds_up_to_the_whole_answer(client):
    messages = [{"role": "user", "content": "Once upon a time"}]
    whole = client.chat(model="hf-256", messages=messages, options=GREEDY)
    assert whole.done and whole.message.role == "assistant"
    assert 1 <= whole.eval_count <= 12 and whole.prompt_eval_count > 0
    assert whole.done_reason in ("stop", "length")
    chunks = list(client.chat(model="hf-256:latest", messages=messages, options=GREEDY, stream=True))
    assert chunks[-1].done and not any(c.done for c in chunks[:-1])
    assert "".join(c.message.content for c in chunks) == whole.message.content
    assert chunks[-1].eval_count == whole.eval_count


def test_generate_with_a_system_prompt_raw_and_json(client):
    answer = client.generate(model="hf-256", prompt="Hello", system="Be brief.", options=GREEDY)
    assert answer.done and isinstance(answer.response, str) and answer.eval_count <= 12
    raw = client.generate(model="hf-256", prompt="Hello", raw=True, options=GREEDY)
    assert raw.done
    pieces = client.generate(model="hf-256", prompt="Hello", system="Be brief.", options=GREEDY, stream=True)
    assert "".join(c.response for c in pieces) == answer.response
    shaped = client.generate(model="hf-256", prompt="A list:", format="json", options={"num_predict": 16})
    assert shaped.done and shaped.response.lstrip().startswith("{")


def test_concurrent_streams_all_finish(server):
    results = []

    def stream(i):
        chunks = list(
            ollama.Client(host=server.url).chat(
                model="hf-256", messages=[{"role": "user", "content": f"Story {i}"}], options=GREEDY, stream=True
            )
        )
        results.append(chunks[-1].done)

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [True] * 8


def test_async_client(server):
    async def run():
        client = ollama.AsyncClient(host=server.url)
        answer = await client.chat(model="hf-256", messages=[{"role": "user", "content": "Hi"}], options=GREEDY)
        pieces = [c async for c in await client.generate(model="hf-256", prompt="Hi", options=GREEDY, stream=True)]
        return answer, pieces

    answer, pieces = asyncio.run(run())
    assert answer.done and pieces[-1].done


def test_errors_become_response_errors(client):
    with pytest.raises(ollama.ResponseError) as unknown:
        client.chat(model="llama3", messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.status_code == 404 and "llama3" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as bad:
        client.generate(model="hf-256", prompt="Hi", options={"top_p": 3})
    assert bad.value.status_code == 400 and "top_p" in bad.value.error
    with pytest.raises(ollama.ResponseError) as long:
        client.generate(model="hf-256", prompt="word " * 2000, raw=True)
    assert long.value.status_code == 400 and "context" in long.value.error

"""`onebit serve` driven by the official openai Python SDK, as real clients use it.

Starts the server on the committed hf-256 fixture on a free port, then checks plain and streamed completions,
several concurrent streams, a client that disconnects mid-stream, and the errors the SDK turns into exceptions.
"""

import json
import os
import re
import threading
import time
import urllib.request

import openai
import pytest
from running_server import ROOT, RunningServer

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "models", "hf-256")
with open(os.path.join(MODEL, "generation_config.json"), encoding="utf-8") as f:
    # Forbidding the end-of-sequence tokens makes a generation run to max_tokens.
    NO_EOS = {str(i): -100 for i in json.load(f)["eos_token_id"]}


class Server(RunningServer):
    """A running `onebit serve` on the fixture model."""

    def __init__(self, *extra: str):
        super().__init__(["--model", MODEL, "--ctx", "512", *extra])

    def client(self, **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=options.pop("api_key", "none"), **options)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.load(response)



@pytest.fixture(scope="module")
def server():
    s = Server("--max-concurrency", "4")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return server.client(max_retries=0, timeout=60)


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["hf-256"]
    assert client.models.retrieve("hf-256").id == "hf-256"


def test_chat_completion(client):
    reply = client.chat.completions.create(
        model="hf-256", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, seed=1, temperature=0.7
    )
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    again = client.chat.completions.create(
        model="hf-256", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, seed=1, temperature=0.7
    )
    assert again.choices[0].message.content == choice.message.content


def test_streamed_chat_matches_plain_chat(client):
    settings = dict(model="hf-256", messages=[{"role": "user", "content": "Hi"}], max_tokens=12, temperature=0)
    plain = client.chat.completions.create(**settings)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **settings))
    assert chunks[0].choices[0].delta.role == "assistant"
    choice_chunks = [c for c in chunks if c.choices]
    assert all(c.choices[0].finish_reason is None for c in choice_chunks[:-1])
    assert choice_chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens == plain.usage.completion_tokens
    text = "".join(c.choices[0].delta.content or "" for c in choice_chunks)
    assert text == plain.choices[0].message.content


def test_text_completion_with_token_ids_and_logprobs(client):
    reply = client.completions.create(model="hf-256", prompt=[1, 2, 3], max_tokens=4, logprobs=2, logit_bias=NO_EOS)
    choice = reply.choices[0]
    assert reply.usage.prompt_tokens == 3 and reply.usage.completion_tokens == 4
    assert len(choice.logprobs.tokens) == 4 and len(choice.logprobs.top_logprobs[0]) >= 1
    streamed = list(client.completions.create(model="hf-256", prompt="Hello", max_tokens=3, stream=True))
    assert streamed[-1].choices[0].finish_reason is not None


def test_concurrent_streams_interleave_and_all_finish(server, client):
    arrivals = []
    lock = threading.Lock()
    errors = []

    def run(index):
        try:
            stream = client.chat.completions.create(
                model="hf-256",
                messages=[{"role": "user", "content": f"Story {index}"}],
                max_tokens=150,
                logit_bias=NO_EOS,
                seed=index,
                stream=True,
            )
            for chunk in stream:
                with lock:
                    arrivals.append((index, chunk.choices[0].finish_reason if chunk.choices else None))
        except Exception as error:  # reported below, on the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    finished = {index for index, reason in arrivals if reason == "length"}
    assert finished == {0, 1, 2, 3}
    # Interleaved: the chunks of the streams alternate rather than arriving one whole stream after another.
    switches = sum(1 for a, b in zip(arrivals, arrivals[1:]) if a[0] != b[0])
    assert switches > 10
    metrics = urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode()
    assert "onebit_generated_tokens_total" in metrics


def test_steps_queued_ahead_stream_what_one_step_at_a_time_streams(server, client):
    ahead = Server("--max-concurrency", "4", "--steps-ahead", "4")
    try:
        queued_client = ahead.client(max_retries=0, timeout=60)
        # Greedy or seeded draws at a temperature, with nothing else read from the logits, so the engine may queue
        # steps; a stop string ends one request inside a run of queued steps.
        requests = [dict(max_tokens=n, temperature=0) for n in (5, 9, 14)]
        requests.append(dict(max_tokens=20, temperature=0, stop=["e"]))
        requests += [dict(max_tokens=12, temperature=0.9, seed=3), dict(max_tokens=16, temperature=1.1, seed=4)]

        def replies(of):
            results = [None] * len(requests)

            def run(index):
                stream = of.completions.create(
                    model="hf-256", prompt=f"Once {index}", stream=True, stream_options={"include_usage": True},
                    **requests[index],
                )
                chunks = list(stream)
                text = "".join(c.choices[0].text for c in chunks if c.choices)
                reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
                results[index] = (text, reasons, chunks[-1].usage.completion_tokens)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            return results

        assert replies(queued_client) == replies(client)
        metrics = urllib.request.urlopen(ahead.url + "/metrics", timeout=10).read().decode()
        queued = re.search(r"^onebit_engine_queued_steps_total (\d+)$", metrics, re.M)
        assert queued and int(queued.group(1)) > 0
    finally:
        ahead.stop()


def test_disconnect_mid_stream_frees_the_sequence(server, client):
    stream = client.chat.completions.create(
        model="hf-256",
        messages=[{"role": "user", "content": "Go on"}],
        max_tokens=400,
        logit_bias=NO_EOS,
        stream=True,
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.time() + 20
    while server.get("/stats")["running"] != 0:
        assert time.time() < deadline, "the disconnected request kept running"
        time.sleep(0.05)
    # Its KV blocks were released with it (kept as cached blocks for a later prompt, not held).
    assert server.get("/stats")["kv_blocks_used"] == 0
    metrics = urllib.request.urlopen(server.url + "/metrics", timeout=10).read().decode()
    assert 'onebit_kv_blocks{state="used"} 0' in metrics
    # The server still answers.
    reply = client.chat.completions.create(
        model="hf-256", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_errors(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="hf-256", messages=[{"role": "user", "content": "x"}], n=2)
    assert error.value.status_code == 400 and error.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="hf-256", messages=[])
    assert error.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(model="hf-256", prompt=[5] * 600)
    assert error.value.code == "context_length_exceeded"
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert error.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model="hf-256", messages=[{"role": "user", "content": "x"}], temperature="hot"
        )
    assert error.value.body["param"] == "temperature"


def test_api_key():
    s = Server("--api-key", "sesame")
    try:
        with pytest.raises(openai.AuthenticationError):
            s.client(api_key="wrong", max_retries=0).models.list()
        assert s.client(api_key="sesame", max_retries=0).models.list().data[0].id == "hf-256"
    finally:
        s.stop()


def test_async_client_streams_with_usage(server):
    import asyncio

    async def run():
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
        stream = await client.chat.completions.create(
            model="hf-256", messages=[{"role": "user", "content": "Hello"}], max_tokens=8, logit_bias=NO_EOS,
            stream=True, stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        await client.close()
        return chunks

    chunks = asyncio.run(run())
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_seeded_sampling_is_reproducible(client):
    def ask():
        return client.chat.completions.create(
            model="hf-256", messages=[{"role": "user", "content": "Tell me a story"}], max_tokens=24,
            temperature=0.9, seed=1234, logit_bias=NO_EOS).choices[0].message.content

    first = ask()
    assert first == ask()


def test_stop_strings_end_the_reply_and_are_left_out(client):
    plain = client.completions.create(
        model="hf-256", prompt="The lighthouse keeper", max_tokens=24, temperature=0, logit_bias=NO_EOS)
    text = plain.choices[0].text
    assert len(text) > 4
    stop = text[2:4]
    cut = client.completions.create(
        model="hf-256", prompt="The lighthouse keeper", max_tokens=24, temperature=0, logit_bias=NO_EOS, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[: text.index(stop)]


def test_32_concurrent_greedy_requests_match_their_sequential_twins(server, client):
    prompts = [f"Request number {i} asks about the sea" for i in range(32)]

    def ask(prompt):
        return client.completions.create(
            model="hf-256", prompt=prompt, max_tokens=12, temperature=0, logit_bias=NO_EOS).choices[0].text

    sequential = [ask(p) for p in prompts]
    results = [None] * len(prompts)
    errors = []

    def run(index):
        try:
            results[index] = ask(prompts[index])
        except Exception as error:  # reported below, on the main thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    assert results == sequential

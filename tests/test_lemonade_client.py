"""`onebit serve` as Lemonade Server's clients reach it: the openai SDK at `/api/v1`, then Lemonade's health,
statistics and model routes."""

import json
import os
import urllib.error
import urllib.request

import openai
import pytest
from running_server import ROOT, RunningServer

MODEL = os.path.join(ROOT, "Tests", "Fixtures", "models", "hf-256")


@pytest.fixture(scope="module")
def server():
    running = RunningServer(["--model", MODEL, "--ctx", "512"])
    yield running
    assert running.stop() == 0


def call(server, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + path, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_openai_sdk_works_at_api_v1_and_stats_follow(server):
    client = openai.OpenAI(base_url=server.url + "/api/v1", api_key="none")
    assert [m.id for m in client.models.list().data] == ["hf-256"]
    answer = client.chat.completions.create(
        model="hf-256", messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0
    )
    status, stats = call(server, "/api/v1/stats")
    assert status == 200
    assert stats["output_tokens"] == answer.usage.completion_tokens
    assert stats["input_tokens"] == answer.usage.prompt_tokens
    assert stats["time_to_first_token"] >= 0 and stats["tokens_per_second"] >= 0
    pieces = client.chat.completions.create(
        model="hf-256", messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == answer.choices[0].message.content


def test_health_and_model_routes(server):
    status, health = call(server, "/api/v1/health")
    assert status == 200 and health["model_loaded"] == "hf-256"
    assert call(server, "/api/v1/load", {"model_name": "hf-256"}) == (
        200,
        {"status": "success", "message": "Loaded model: hf-256"},
    )
    assert call(server, "/api/v1/load_model", {"model": "hf-256"})[0] == 200
    status, error = call(server, "/api/v1/load", {"model_name": "Llama-3.2-1B-Instruct-Hybrid"})
    assert status == 404 and error["error"]["code"] == "model_not_found"
    status, error = call(server, "/api/v1/unload", {})
    assert status == 400 and "keeps it loaded" in error["error"]["message"]

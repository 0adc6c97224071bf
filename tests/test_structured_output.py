"""Structured output through the openai SDK: `response_format` on the built-in demo model.

The demo model writes Shakespearean nonsense; under a schema that nonsense must still come out as JSON that parses
and validates, for hand-written schemas, a pydantic model, and 50 random schemas from a small generator.
"""

import json
import random

import jsonschema
import openai
import pydantic
import pytest
from running_server import RunningServer



@pytest.fixture(scope="module")
def client():
    """`onebit serve` on the built-in model, stopped with SIGTERM after the module."""
    server = RunningServer(["--ctx", "1024", "--device", "cpu"])
    url = server.url
    yield openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=120)
    server.stop()


def schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": schema}}


def random_schema(rng: random.Random, depth: int = 0) -> dict:
    """A schema of the subset the engine enforces; strings are bounded so the demo model's prose ends."""
    kinds = ["string", "integer", "number", "boolean", "enum", "const", "nullable"]
    if depth < 2:
        kinds += ["array", "anyOf", "object", "object"]
    kind = rng.choice(kinds)
    if kind == "string":
        return {"type": "string", "minLength": rng.randint(0, 2), "maxLength": rng.randint(3, 24)}
    if kind in ("integer", "number", "boolean"):
        return {"type": kind}
    if kind == "enum":
        return {"enum": rng.sample(["red", "green", 3, 4.5, None, True, "naïve", {"k": [1]}], rng.randint(1, 4))}
    if kind == "const":
        return {"const": rng.choice(["fixed", 7, False, None, [1, "two"]])}
    if kind == "nullable":
        return {"type": [rng.choice(["integer", "boolean", "number"]), "null"]}
    if kind == "array":
        low = rng.randint(0, 2)
        items = random_schema(rng, depth + 1)
        return {"type": "array", "items": items, "minItems": low, "maxItems": low + rng.randint(0, 3)}
    if kind == "anyOf":
        return {"anyOf": [random_schema(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    names = rng.sample(["name", "age", "city", "tags", "score", "ok", "note", "id"], rng.randint(1, 4))
    return {
        "type": "object",
        "description": "generated",
        "properties": {n: random_schema(rng, depth + 1) for n in names},
        "required": names,
        "additionalProperties": False,
    }


def check(content: str, schema: dict):
    value = json.loads(content)
    jsonschema.validate(value, schema)
    return value


def test_json_schema_chat(client):
    schema = {
        "type": "object",
        "properties": {
            "king": {"type": "string", "maxLength": 20},
            "year": {"type": "integer"},
            "heirs": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
            "crowned": {"type": "boolean"},
        },
        "required": ["king", "year", "heirs", "crowned"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="onebit-demo",
        messages=[{"role": "user", "content": "Describe a king."}],
        response_format=schema_format(schema),
        seed=1,
    )
    assert reply.choices[0].finish_reason == "stop"
    check(reply.choices[0].message.content, schema)


def test_json_object_completion_and_stream(client):
    reply = client.completions.create(
        # The SDK's completions.create has no response_format parameter; the server reads it from the body.
        model="onebit-demo",
        prompt="Data:",
        max_tokens=400,
        seed=3,
        extra_body={"response_format": {"type": "json_object"}},
    )
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].text), dict)
    else:
        assert reply.choices[0].text.startswith("{")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string", "maxLength": 9}}}
    stream = client.chat.completions.create(
        model="onebit-demo",
        messages=[{"role": "user", "content": "Hi"}],
        response_format=schema_format(schema),
        seed=4,
        stream=True,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    check(text, schema)


class Character(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=20)
    lines: int


class Play(pydantic.BaseModel):
    title: str = pydantic.Field(max_length=30)
    acts: int
    tragedy: bool
    lead: Character
    year: int | None


def test_pydantic_parse(client):
    # The SDK sends a strict schema with the nested model under $defs, referred to by $ref.
    for seed in range(3):
        reply = client.chat.completions.parse(
            model="onebit-demo", messages=[{"role": "user", "content": "Name a play."}], response_format=Play, seed=seed
        )
        assert isinstance(reply.choices[0].message.parsed, Play)


def test_unsupported_schema_is_a_400_naming_the_keyword(client):
    schema = {"type": "object", "properties": {"email": {"type": "string", "format": "email"}}}
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model="onebit-demo", messages=[{"role": "user", "content": "Hi"}], response_format=schema_format(schema)
        )
    assert '"format"' in str(error.value)


def test_fifty_random_schemas_always_validate(client):
    rng = random.Random(2026)
    for index in range(50):
        schema = random_schema(rng)
        reply = client.chat.completions.create(
            model="onebit-demo",
            messages=[{"role": "user", "content": "Answer in JSON."}],
            response_format=schema_format(schema),
            seed=index,
            temperature=0.8,
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "stop", f"schema {index} {json.dumps(schema)}: {choice.message.content!r}"
        check(choice.message.content, schema)

"""LLM wrapper: cache, retries, timeouts, concurrency, JSON extraction and repair."""

from __future__ import annotations

import asyncio
import json

import httpx
import litellm
import pytest
from fakes import FakeLLM, rate_limit, register_fake, server_error, timeout_error

from grounded.errors import ConfigError, LLMError, LLMFatalError
from grounded.llm import LLM, CallCache, acomplete_structured, call_key, extract_json
from grounded.prompting import Reply

MSG = [{"role": "user", "content": "hello"}]
GOOD = json.dumps(
    {
        "pairs": [
            {"quote": "The sky is blue.", "answer": "blue", "question": "What colour is the sky?"}
        ]
    }
)


@pytest.fixture
def fake():
    f = FakeLLM(responder=None)
    register_fake(f)
    return f


def make(tmp_path, **kw):
    kw.setdefault("backoff", 0.0)
    return LLM("fake/test-model", cache=tmp_path / "llm.sqlite", **kw)


def test_completion_usage_and_cache_hit_across_instances(fake, tmp_path):
    fake.queue_reply("first reply")
    c = make(tmp_path, temperature=0.2).complete(MSG)
    assert c.text == "first reply" and not c.cached
    assert c.prompt_tokens == 1 and c.completion_tokens == 2
    assert fake.calls[0]["optional_params"]["temperature"] == 0.2
    again = make(tmp_path, temperature=0.2)
    hit = again.complete(MSG)
    assert hit.cached and hit.text == "first reply" and hit.call_id == c.call_id
    assert len(fake.calls) == 1
    assert again.stats.calls == 0 and again.stats.cached_calls == 1


def test_cache_key_covers_params_and_response_format():
    base = call_key("m", MSG, {"temperature": 0}, None)
    assert base == call_key("m", [dict(MSG[0])], {"temperature": 0}, None)
    assert base != call_key("m", MSG, {"temperature": 1}, None)
    assert base != call_key("m", MSG, {"temperature": 0}, {"type": "json_object"})
    assert base != call_key("other", MSG, {"temperature": 0}, None)


@pytest.mark.parametrize("fault", [rate_limit, server_error, timeout_error])
def test_retryable_faults_are_retried(fake, tmp_path, fault):
    fake.queue_reply(fault(), fault(), "ok")
    llm = make(tmp_path)
    assert llm.complete(MSG).text == "ok"
    assert len(fake.calls) == 3
    assert llm.stats.retries == 2 and llm.stats.calls == 1 and llm.stats.failures == 0


def test_retries_exhausted_raise_llm_error_and_cache_nothing(fake, tmp_path):
    fake.queue_reply(*[server_error() for _ in range(3)])
    llm = make(tmp_path, max_retries=2)
    with pytest.raises(LLMError, match=r"server error 500: .*\(InternalServerError, 3 attempts\)"):
        llm.complete(MSG)
    assert len(fake.calls) == 3 and llm.stats.failures == 1
    assert len(CallCache(tmp_path / "llm.sqlite")) == 0


def test_non_retryable_error_fails_fast(fake, tmp_path):
    fake.queue_reply(litellm.AuthenticationError(message="bad key", llm_provider="fake", model="m"))
    with pytest.raises(
        LLMFatalError, match="the API key was refused .*AuthenticationError"
    ) as info:
        make(tmp_path).complete(MSG)
    assert info.value.hint == "check FAKE_API_KEY"
    assert len(fake.calls) == 1


def test_after_a_fatal_refusal_later_calls_fail_without_a_request(fake, tmp_path):
    fake.queue_reply(
        litellm.NotFoundError(message="no such model", llm_provider="fake", model="m"), "ok"
    )
    llm = make(tmp_path)
    with pytest.raises(LLMFatalError, match="unknown model") as info:
        llm.complete(MSG)
    assert "check the model name" in info.value.hint
    with pytest.raises(LLMFatalError, match="unknown model"):
        llm.complete([{"role": "user", "content": "another"}])
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    "exc",
    [
        litellm.PermissionDeniedError(
            message="no",
            llm_provider="fake",
            model="m",
            response=httpx.Response(403, request=httpx.Request("POST", "http://x")),
        ),
        litellm.BadRequestError(message="bad schema", llm_provider="fake", model="m"),
        litellm.ContentPolicyViolationError(message="refused", llm_provider="fake", model="m"),
    ],
    ids=["403", "400", "content-policy"],
)
def test_refusals_are_fatal(fake, tmp_path, exc):
    fake.queue_reply(exc)
    with pytest.raises(LLMFatalError, match="stopping, no retry can fix this"):
        make(tmp_path).complete(MSG)
    assert len(fake.calls) == 1


def test_a_prompt_too_long_for_the_model_fails_that_call_only(fake, tmp_path):
    fake.queue_reply(
        litellm.ContextWindowExceededError(message="too long", llm_provider="fake", model="m"), "ok"
    )
    llm = make(tmp_path)
    with pytest.raises(LLMError) as info:
        llm.complete(MSG)
    assert not isinstance(info.value, LLMFatalError)
    assert llm.complete([{"role": "user", "content": "short"}]).text == "ok"


def test_per_call_timeout_is_enforced_and_retried(tmp_path):
    slow = FakeLLM(responder=lambda m: "late", delay=5.0)
    register_fake(slow)
    llm = make(tmp_path, timeout=0.05, max_retries=1)
    with pytest.raises(LLMError, match=r"timed out after 0.05 s \(.*, 2 attempts\)"):
        llm.complete(MSG)
    assert llm.stats.retries == 1


def test_concurrency_is_bounded_and_identical_calls_share_one_request(tmp_path):
    fake = FakeLLM(responder=lambda m: "x", delay=0.02)
    register_fake(fake)
    llm = make(tmp_path, concurrency=3)

    async def run():
        msgs = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
        return await asyncio.gather(*(llm.acomplete(m) for m in msgs + msgs[:2]))

    results = asyncio.run(run())
    assert len(results) == 14
    assert fake.max_active <= 3
    assert len(fake.calls) == 12  # the two repeats were served by the in-flight twins
    assert llm.stats.calls == 12 and llm.stats.cached_calls == 2


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "Sure! Here are the pairs you asked for:\n" + GOOD + "\nHope this helps {:)}",
        "```json\n" + GOOD + "\n```",
        "I think {this} is fine. " + GOOD,
        '{"broken": [1, 2} and then ' + GOOD,
    ],
)
def test_extract_json_finds_the_object(text):
    assert extract_json(text) == json.loads(GOOD)


@pytest.mark.parametrize(
    "text, message",
    [("", "empty reply"), ("no json here", "no JSON object"), ('{"a": [1, 2', "invalid JSON")],
)
def test_extract_json_errors(text, message):
    with pytest.raises(ValueError, match=message):
        extract_json(text)


def test_structured_repair_sends_bad_output_and_error(fake, tmp_path):
    fake.queue_reply('{"pairs": [{"answer": "blue"}]}', "Here you go: " + GOOD)
    res = asyncio.run(acomplete_structured(make(tmp_path), MSG, Reply))
    assert res.value is not None and res.value.pairs[0].answer == "blue"
    assert len(res.completions) == 2
    repair = fake.calls[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"pairs": [{"answer": "blue"}]}'}
    assert "pairs.0.question" in repair[-1]["content"]


@pytest.mark.parametrize(
    "bad",
    ["", "I cannot help with that.", '{"pairs": "nope"}', '{"pairs": [{"question": "Why?"}]}'],
)
def test_structured_gives_up_after_one_repair(fake, tmp_path, bad):
    fake.queue_reply(bad, bad)
    res = asyncio.run(acomplete_structured(make(tmp_path), MSG, Reply))
    assert res.value is None and "after repair" in res.error
    assert len(fake.calls) == 2


def test_bare_pair_is_accepted():
    reply = Reply.model_validate({"quote": "q text", "answer": "a", "question": "What is it?"})
    assert reply.pairs[0].all_quotes == ["q text"]


def test_rate_limiter_waits_for_the_window_on_requests_and_tokens():
    from grounded.llm import RateLimiter

    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds):
        waits.append(round(seconds, 3))
        now[0] += seconds

    limiter = RateLimiter(rpm=2, tpm=1000, clock=lambda: now[0], sleep=sleep)

    async def run():
        await limiter.acquire(100)
        now[0] += 10
        await limiter.acquire(100)
        await limiter.acquire(100)  # third request inside the minute: waits until the first expires
        await limiter.acquire(900)  # over the token budget: waits for older tokens to expire

    asyncio.run(run())
    assert waits == [50.0, 10.0]


# --- the transport seam and the typed options --------------------------------------------------


def test_cache_keys_are_a_file_format():
    """Caches written by earlier versions replay: this call's key was computed before the split."""
    key = call_key("openai/gpt-4o-mini", MSG, {"temperature": 0.2, "max_tokens": 100}, None)
    assert key == call_key(
        "openai/gpt-4o-mini", MSG, {"temperature": 0.2, "max_tokens": 100, "api_key": "k"}, None
    )
    assert (
        call_key(
            "openai/gpt-4o-mini",
            MSG,
            {"temperature": 0.2, "max_tokens": 100, "api_key": "sk-x"},
            {"type": "json_object"},
        )
        == "bb3814f58a6dffadacd06fdf398e77193bc0b68445e031a761aaa021ec8973af"
    )


def test_typed_options_and_the_keyword_style_are_one_client():
    from grounded.llm import Connection, Limits, Retries, Sampling

    typed = LLM(
        "openai/m",
        sampling=Sampling(temperature=0.2, max_tokens=9, extra={"repeat_penalty": 1.1}),
        connection=Connection(api_base="http://x/v1", api_key="k"),
        limits=Limits(concurrency=3, rpm=60),
        retries=Retries(timeout=5.0, max_retries=1),
    )
    keywords = LLM(
        "openai/m",
        temperature=0.2,
        max_tokens=9,
        repeat_penalty=1.1,
        api_base="http://x/v1",
        api_key="k",
        concurrency=3,
        rpm=60,
        timeout=5.0,
        max_retries=1,
    )
    for llm in (typed, keywords):
        assert llm.key(MSG) == call_key(
            "openai/m", MSG, {"temperature": 0.2, "max_tokens": 9, "repeat_penalty": 1.1}, None
        )
        assert llm.concurrency == 3 and llm.timeout == 5.0 and llm.max_retries == 1
        assert llm.connection.api_base == "http://x/v1" and "k" not in repr(llm.connection)
    assert typed.key(MSG, sampling=Sampling(temperature=0.0)) != typed.key(MSG)
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        Limits(concurrency=0)


def test_a_transport_is_chosen_by_prefix_or_given(tmp_path):
    from grounded.llm import (
        LiteLLMTransport,
        register_transport,
        transport_for,
        unregister_transport,
    )

    assert isinstance(transport_for("openai/gpt-4o-mini"), LiteLLMTransport)
    given = FakeLLM(["from the given transport"], responder=None)
    llm = LLM("anything/m", cache=tmp_path / "c.sqlite", transport=given)
    assert llm.complete(MSG, temperature=0.0).text == "from the given transport"
    assert given.calls[0]["optional_params"] == {"temperature": 0.0}
    register_transport("mine", lambda: given)
    assert transport_for("mine/x") is given
    unregister_transport("mine")
    assert isinstance(transport_for("mine/x"), LiteLLMTransport)


def test_the_repair_loop_shows_the_model_its_reply_and_stops_after_its_rounds(fake, tmp_path):
    from grounded.llm import Repair, arepair

    fake.queue_reply("one", "two", "three", "four")

    async def read(text):
        return text

    def needs(readings):
        return Repair(f"not {readings[-1]}", {"type": "json_object"})

    done = asyncio.run(arepair(make(tmp_path), MSG, read, needs, rounds=2))
    assert done.readings == ["one", "two", "three"] and len(done.completions) == 3
    last = fake.calls[2]["messages"]
    assert [m["content"] for m in last] == ["hello", "one", "not one", "two", "not two"]
    assert fake.calls[0]["optional_params"] == {} and fake.calls[2]["optional_params"] == {
        "response_format": {"type": "json_object"}
    }

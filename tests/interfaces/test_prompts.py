"""The prompt broker of the UI's server: a run's SSH prompt asked in the project's tabs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharin.interfaces.server._prompts import PromptBroker, PromptUnanswered


def test_the_first_answer_is_taken_and_every_tab_told_the_prompt_is_over() -> None:
    async def go() -> None:
        broker = PromptBroker(timeout=5)
        one: list[dict[str, Any]] = []
        two: list[dict[str, Any]] = []
        broker.attach("p", one.append)
        ask = broker.asker("p")
        answer = asyncio.ensure_future(asyncio.to_thread(ask, "passphrase for k: ", False))
        while not one:
            await asyncio.sleep(0.01)
        assert one == [{"type": "ask", "id": 1, "prompt": "passphrase for k: ", "echo": False}]
        broker.attach("p", two.append)  # a tab that comes while it is pending is asked too
        assert two == one
        assert not broker.reply("other", {"type": "answer", "id": 1, "text": "x"})  # not its
        assert broker.reply("p", {"type": "answer", "id": 1, "text": "s3cret"})
        assert not broker.reply("p", {"type": "answer", "id": 1, "text": "late"})
        assert await answer == "s3cret"
        assert one[-1] == two[-1] == {"type": "asked", "id": 1}
        assert broker.pending("p") == 0

    asyncio.run(go())


@pytest.mark.parametrize("how", ["cancel", "timeout", "close"])
def test_a_prompt_nobody_answers_fails_with_what_to_do(how: str) -> None:
    async def go() -> str:
        broker = PromptBroker(timeout=0.3 if how == "timeout" else 30)
        seen: list[dict[str, Any]] = []
        broker.attach("p", seen.append)
        ask = broker.asker("p")
        answer = asyncio.ensure_future(asyncio.to_thread(ask, "passphrase for /k/id: ", False))
        while not seen:
            await asyncio.sleep(0.01)
        if how == "cancel":
            assert broker.reply("p", {"type": "cancel", "id": seen[0]["id"]})
        elif how == "close":
            broker.close()
        with pytest.raises(PromptUnanswered) as e:
            await answer
        assert seen[-1]["type"] == "asked"
        return str(e.value)

    message = asyncio.run(go())
    assert message.startswith("passphrase for /k/id")
    if how == "timeout":
        assert "no one answered the passphrase prompt in the UI" in message
        assert "open the project's page and run again" in message
    elif how == "cancel":
        assert "cancelled in the UI" in message
    else:
        assert "server stopped" in message


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
_reply = st.fixed_dictionaries(
    {"type": st.sampled_from(["answer", "cancel", "ask", 1, None])},
    optional={"id": st.one_of(st.integers(-2, 3), st.booleans(), st.text(max_size=2), st.none()),
              "text": _json},
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(st.one_of(_json, _reply))
def test_what_a_tab_sends_never_breaks_the_broker_and_only_a_real_answer_counts(
    message: Any,
) -> None:
    async def go() -> None:
        broker = PromptBroker(timeout=5)
        asked = asyncio.ensure_future(broker.ask_async("p", "code: ", True))
        await asyncio.sleep(0)
        took = broker.reply("p", message)
        real = (
            isinstance(message, dict)
            and message.get("id") == 1
            and not isinstance(message.get("id"), bool)
            and (
                message.get("type") == "cancel"
                or (message.get("type") == "answer" and isinstance(message.get("text"), str))
            )
        )
        assert took == real
        if not took:
            broker.reply("p", {"type": "answer", "id": 1, "text": "ok"})
        try:
            await asked
        except PromptUnanswered:
            assert message["type"] == "cancel"

    asyncio.run(go())

"""SSH login prompts of runs started from the browser UI, asked in the project's open tabs.

A run's SSH transport calls ``ask(prompt, echo)`` in a worker thread when a key has a passphrase
or a host asks a password or one-time code. :class:`PromptBroker` posts ``{"type": "ask", "id",
"prompt", "echo"}`` to every events WebSocket of the project (and to those that connect while it
is pending), takes the first ``{"type": "answer", "id", "text"}`` (or ``{"type": "cancel",
"id"}``), then tells every tab ``{"type": "asked", "id"}`` so that they close their dialog.
Nobody answering within the time limit fails the login with one clear message. Answers are
handed to the caller only: never stored, never logged.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import SharinError

__all__ = ["PromptBroker", "PromptUnanswered"]

#: seconds a prompt waits for an answer from a tab (ServerConfig.prompt_timeout)
DEFAULT_TIMEOUT = 300.0

Post = Callable[[dict[str, Any]], None]


class PromptUnanswered(SharinError):
    """Nobody answered a login prompt in the UI (or it was cancelled there)."""


@dataclass
class _Pending:
    project: str
    prompt: str
    echo: bool
    answer: asyncio.Future[str | None] = field(repr=False)

    def message(self, n: int) -> dict[str, Any]:
        return {"type": "ask", "id": n, "prompt": self.prompt, "echo": self.echo}


class PromptBroker:
    """The prompts of every project's runs and the tabs that may answer them.

    Made in the server's event loop; :meth:`asker` gives the ``ask`` callback of one project's
    run, to be called from any other thread.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._clients: dict[str, list[Post]] = {}

    def attach(self, project: str, post: Post) -> Callable[[], None]:
        """Send ``project``'s prompts to ``post`` (a tab's events socket), those pending at once;
        returns the function that stops it. Called in the loop."""
        self._clients.setdefault(project, []).append(post)
        for n, p in list(self._pending.items()):
            if p.project == project:
                post(p.message(n))

        def detach() -> None:
            posts = self._clients.get(project, [])
            if post in posts:
                posts.remove(post)
            if not posts:
                self._clients.pop(project, None)

        return detach

    def _post(self, project: str, message: dict[str, Any]) -> None:
        for post in list(self._clients.get(project, [])):
            post(message)

    def reply(self, project: str, message: Any) -> bool:
        """A tab's ``answer`` or ``cancel`` of one of ``project``'s prompts; False if it is no
        such message (or the prompt was answered already). Called in the loop."""
        if not isinstance(message, dict) or message.get("type") not in ("answer", "cancel"):
            return False
        n = message.get("id")
        p = self._pending.get(n) if isinstance(n, int) and not isinstance(n, bool) else None
        if p is None or p.project != project or p.answer.done():
            return False
        if message["type"] == "answer":
            text = message.get("text")
            if not isinstance(text, str):
                return False
            p.answer.set_result(text)
        else:
            p.answer.set_result(None)
        return True

    def close(self) -> None:
        """Give up every pending prompt (the server stops): their logins fail."""
        for p in self._pending.values():
            if not p.answer.done():
                p.answer.set_exception(
                    PromptUnanswered(
                        f"{p.prompt.strip().rstrip(':')}: the server stopped before anyone "
                        "answered the prompt; start `sharin ui` again and run again"
                    )
                )

    def pending(self, project: str) -> int:
        """Prompts of ``project`` waiting for an answer."""
        return sum(1 for p in self._pending.values() if p.project == project)

    async def ask_async(self, project: str, prompt: str, echo: bool) -> str:
        """Ask ``project``'s tabs; the first answer, or :class:`PromptUnanswered`."""
        n = next(self._ids)
        p = _Pending(project, prompt, echo, self._loop.create_future())
        self._pending[n] = p
        self._post(project, p.message(n))
        try:
            try:
                answer = await asyncio.wait_for(asyncio.shield(p.answer), self.timeout)
            except TimeoutError:
                raise PromptUnanswered(
                    f"{prompt.strip().rstrip(':')}: no one answered the "
                    f"{_kind(prompt)} prompt in the UI within {_duration(self.timeout)}; open "
                    "the project's page and run again"
                ) from None
            if answer is None:
                raise PromptUnanswered(
                    f"{prompt.strip().rstrip(':')}: the {_kind(prompt)} prompt was cancelled in "
                    "the UI; run again to be asked again"
                )
            return answer
        finally:
            del self._pending[n]
            self._post(project, {"type": "asked", "id": n})

    def asker(self, project: str) -> Callable[[str, bool], str]:
        """The ``ask(prompt, echo)`` of a run of ``project``, for a worker thread."""

        def ask(prompt: str, echo: bool) -> str:
            asked = asyncio.run_coroutine_threadsafe(
                self.ask_async(project, prompt, echo), self._loop
            )
            return asked.result(self.timeout + 30)  # the loop answers first, unless it is gone

        return ask


def _kind(prompt: str) -> str:
    low = prompt.lower()
    if "passphrase" in low:
        return "passphrase"
    if "password" in low:
        return "password"
    return "login"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        m = int(seconds // 60)
        return f"{m} minute{'s' if m != 1 else ''}"
    return f"{seconds:g} seconds"

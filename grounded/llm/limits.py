"""Per-minute request and token budgets, and the prompt-token estimate they are charged with."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from grounded.chunking import count_tokens
from grounded.llm.models import Message


def count_message_tokens(messages: Sequence[Message]) -> int:
    """Approximate prompt tokens of a chat: the chunking tokenizer (cl100k_base) plus framing."""
    # ~4 tokens of chat framing per message, as OpenAI documents for its chat format.
    return sum(count_tokens(str(m.get("content") or "")) + 4 for m in messages) + 2


class RateLimiter:
    """Sliding one-minute windows over requests and tokens; `acquire` waits for room."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        clock: Any = time.monotonic,
        sleep: Any = asyncio.sleep,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._clock = clock
        self._sleep = sleep
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._lock: asyncio.Lock | None = None

    async def acquire(self, tokens: int = 0) -> None:
        if not self.rpm and not self.tpm:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                while self._requests and now - self._requests[0] >= 60:
                    self._requests.popleft()
                while self._tokens and now - self._tokens[0][0] >= 60:
                    self._tokens.popleft()
                wait = 0.0
                if self.rpm and len(self._requests) >= self.rpm:
                    wait = max(wait, 60 - (now - self._requests[0]))
                used = sum(t for _, t in self._tokens)
                # A single call larger than the whole budget still goes once the window is empty.
                if self.tpm and self._tokens and used + tokens > self.tpm:
                    wait = max(wait, 60 - (now - self._tokens[0][0]))
                if wait <= 0:
                    self._requests.append(now)
                    if tokens:
                        self._tokens.append((now, tokens))
                    return
                await self._sleep(wait)

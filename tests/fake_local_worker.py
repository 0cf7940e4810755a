"""A stand-in for `grounded.local_worker` that speaks its protocol without llama.cpp.

Run by tests through `$GROUNDED_LOCAL_WORKER`. It answers generation prompts like a careful model
(one pair per sentence, quoted exactly) and, with `FAKE_WORKER_CRASH_AFTER=N`, kills itself with
SIGSEGV on the request after N answered chats, as a llama.cpp build for another CPU does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys

_PASSAGE = re.compile(r'<passage n="(\d+)">\n(.*?)\n</passage>', re.S)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]")


def quoting_responder(messages: list[dict]) -> str:
    """One pair per sentence of the passages shown, quoting it exactly (no litellm import: fast)."""
    last = next(m for m in reversed(messages) if m["role"] == "user")
    content = str(last["content"])
    wanted = re.search(r"Write (\d+) question", content)
    n = int(wanted.group(1)) if wanted else 1
    sentences = [s.strip() for _, p in _PASSAGE.findall(content) for s in _SENTENCE.findall(p)]
    pairs = []
    for s in [s for s in sentences if len(s.split()) >= 3][:n]:
        words = s.rstrip(".!?").split()
        pairs.append(
            {
                "quote": s,
                "answer": " ".join(words[-2:]),
                "question": f"What completes the statement '{' '.join(words[:-2])}'?",
            }
        )
    return json.dumps({"pairs": pairs})


def main() -> None:
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    crash_after = int(os.environ.get("FAKE_WORKER_CRASH_AFTER", "-1"))
    answered = 0

    def send(message: dict) -> None:
        out.write(json.dumps(message).encode("utf-8") + b"\n")

    send({"ok": True, "ready": {"pid": os.getpid(), "llama_cpp": "fake"}})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request.get("op") == "ping":
            send({"ok": True, "result": "pong"})
            continue
        if answered == crash_after:
            print("fake worker: about to crash", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        text = quoting_responder(request["messages"])
        answered += 1
        send(
            {
                "ok": True,
                "result": {
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
                },
            }
        )


if __name__ == "__main__":
    main()

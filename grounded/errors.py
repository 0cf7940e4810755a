"""One error hierarchy; the CLI turns each into a one-line message and an exit code."""

from __future__ import annotations


class GroundedError(Exception):
    """Base of every error grounded raises on purpose. Exit code 1 at the CLI."""

    exit_code = 1
    hint = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ConfigError(GroundedError):
    """A bad option, config file or template. Exit code 2."""

    exit_code = 2


class PromptError(ConfigError):
    """A prompt template that fails validation (names the file and the key)."""


class MissingDependencyError(GroundedError):
    """An optional dependency is not installed; the message says what to install. Exit code 3."""

    exit_code = 3

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} needs an optional dependency", hint=f"pip install {install}")


class LoaderError(GroundedError):
    """A document that cannot be read; ingest records it as skipped and goes on."""


class IndexStoreError(GroundedError):
    """The index directory or Chroma server cannot be used. Exit code 4."""

    exit_code = 4


class LLMError(GroundedError):
    """An LLM call failed after its retries. Exit code 5."""

    exit_code = 5


class LLMFatalError(LLMError):
    """A call that no retry can fix (bad key, unknown model, refused request): stop the run. Exit 5."""


class LocalModelCrashed(LLMFatalError):
    """The local model's worker process died (a native crash, killed, out of memory). Exit 5."""


class LocalModelFileError(LLMFatalError):
    """A bundled model's parts are missing or not the pinned bytes, or its file does not fit.

    Fatal to a run (no retry can fix it; the first call stops it), exit code 3 like a missing
    dependency: the message names the pip command that repairs the install.
    """

    exit_code = 3


class OutputLockedError(GroundedError):
    """Another grounded process is writing to the same output folder. Exit 1."""


class CheckError(GroundedError):
    """Input to the checker or an eval cannot be read."""


# Exit code when a command finished but skipped or rejected some inputs it was asked to handle.
EXIT_PARTIAL = 10
EXIT_INTERRUPTED = 130

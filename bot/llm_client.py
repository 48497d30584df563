"""The chat model itself: built from a "provider:model" spec, asked to rewrite a follow-up in
one call held to a deadline, and its failures told in a few words."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from bot.deadline import run_with_deadline
from bot.llm_prompting import CONDENSE_PLACEHOLDERS, cached_prompt, format_history
from bot.types import Turn
from dossier_common.errors import ConfigError

log = logging.getLogger(__name__)

# Extras declared in pyproject.toml; other providers need their own langchain-* package.
_EXTRAS = {"openai": "openai", "azure_openai": "openai", "ollama": "ollama", "anthropic": "anthropic"}


def make_chat_model(spec: str, timeout: float, *, max_retries: int = 0) -> BaseChatModel:
    """Build a chat model from "provider:model" (e.g. "openai:gpt-4o-mini").

    OpenAI reads OPENAI_API_KEY and OPENAI_BASE_URL from the environment, which is how an
    OpenAI-compatible server (vLLM, llama.cpp, LM Studio) is reached. Retries default to
    none because a failed call falls back to the extractive answer at once.
    """
    from langchain.chat_models import init_chat_model

    provider = spec.split(":", 1)[0] if ":" in spec else ""
    kwargs: dict[str, Any]
    if provider == "ollama":
        # ChatOllama has no timeout or retry fields; its httpx client takes the timeout.
        kwargs = {"client_kwargs": {"timeout": timeout}}
    else:
        kwargs = {"timeout": timeout, "max_retries": max_retries}
    try:
        return init_chat_model(spec, **kwargs)
    except ImportError as err:
        extra = _EXTRAS.get(provider)
        hint = (
            f"pip install 'dossier[{extra}]'"
            if extra
            else f"pip install langchain-{provider.replace('_', '-')}"
        )
        raise ConfigError(
            f"The language model {spec!r} needs a package that is not installed: {hint}"
        ) from err
    except Exception as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "api_key" in message.lower():
            message += " (an OpenAI-compatible local server accepts any OPENAI_API_KEY value)"
        raise ConfigError(f"Cannot set up the language model {spec!r}: {message}") from err


def condense_question(
    model: BaseChatModel,
    question: str,
    history: Sequence[Turn],
    *,
    prompts_dir: Path | None = None,
    deadline: float | None = None,
) -> str:
    """Rewrite a follow-up into a standalone question; the question unchanged on any error."""
    if not history:
        return question
    try:
        prompt = cached_prompt("condense", frozenset(CONDENSE_PLACEHOLDERS), prompts_dir)
        messages = prompt.messages(history=format_history(history), question=question)
        reply = str(run_with_deadline(lambda _expired: model.invoke(messages).text, deadline))
    except Exception as err:
        log.warning("could not condense the question (%s); using it as asked", short_reason(err))
        log.debug("condense failure", exc_info=True)
        return question
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    rewritten = re.sub(r"(?i)^standalone question:\s*", "", lines[0]) if lines else ""
    rewritten = rewritten.strip().strip("\"'“”‘’").strip()
    # A reply much longer than the question is an answer or a ramble, not a rewrite.
    if not rewritten or len(rewritten) > max(500, 4 * len(question)):
        return question
    return rewritten


def short_reason(err: BaseException) -> str:
    """A few words for the user: "timeout", "HTTP 500", "connection error"."""
    name = type(err).__name__
    if isinstance(err, TimeoutError) or "timeout" in name.lower():
        return "timeout"
    status = getattr(err, "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    if isinstance(err, ConnectionError) or "connection" in name.lower():
        return "connection error"
    return name

"""Chat templates for GGUF models run by llama-cpp-python: which format turns
messages into the model's prompt, and messages any template accepts.

A prompt format (this module's ``ChatTemplate`` for instruct models,
``dialogue.Dialogue`` for base models) renders a conversation into the
tokens the generation thread feeds the model, with the stop sequences that
end a reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from worker.context import Framing

log = logging.getLogger(__name__)

#: Text no chat template writes by itself: probes whether a template keeps a
#: system message or silently drops it.
_SYSTEM_PROBE = "tidechat-system-probe-7f3a"


@dataclass(slots=True)
class Rendered:
    """A prompt ready for ``Llama.create_completion``."""

    tokens: list[int]
    #: Strings that end the reply (the format's own, besides the model's).
    stop: list[str] = field(default_factory=list)
    #: llama-cpp-python StoppingCriteriaList from a chat formatter, if any.
    stopping_criteria: Any = None
    #: Drop the reply's leading whitespace (a dialogue's "Assistant:" is
    #: followed by the model's " Paris").
    lstrip: bool = False


class PromptFormat(Protocol):
    """How a conversation becomes the model's prompt."""

    @property
    def name(self) -> str:
        """For logs: which format, from where."""
        ...

    def render(self, llm: Any, messages: list[dict[str, str]], room: int) -> Rendered:
        """The prompt for a reply to the last user message, fitting in
        ``room`` tokens if the format has anything to leave out; runs in the
        generation thread (tokenizing a long prompt takes a while)."""
        ...

    def framing(self, count: Any) -> Framing | None:
        """Tokens the format adds beyond each message's own and its role
        markers, for the context budget; None when that is all."""
        ...


@dataclass(slots=True)
class ChatTemplate:
    """How messages become the model's prompt."""

    #: A llama-cpp-python ChatFormatter: ``formatter(messages=...)``.
    formatter: Any
    #: Where it came from, for logs: the GGUF's own template or a built-in format.
    name: str
    #: Whether a system message must be folded into the first user turn
    #: because the template would drop it or refuse it.
    folds_system: bool

    def render(self, llm: Any, messages: list[dict[str, str]], room: int) -> Rendered:
        """What llama-cpp-python's chat handler would feed the model."""
        result = format_prompt(self, normalize_messages(messages, fold_system=self.folds_system))
        tokens = llm.tokenize(
            result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
        )
        stop = result.stop if isinstance(result.stop, list) else [result.stop]
        return Rendered(
            tokens=tokens,
            stop=[s for s in stop if s],
            stopping_criteria=result.stopping_criteria,
        )

    def framing(self, count: Any) -> Framing | None:
        return None


def chat_template(llm: Any) -> ChatTemplate:
    """The GGUF's own chat template, else the model family's built-in format.

    The bundled Gemma 3 270M GGUF carries no template, and llama-cpp-python
    then falls back to the Llama 2 ``[INST]`` format, which Gemma does not
    know; its built-in ``gemma`` format is used instead. That format drops a
    system message (Gemma has no system role), so whether a template keeps the
    system message is probed, and when it does not, the system prompt is
    folded into the first user turn, as Gemma's official template does.
    """
    from llama_cpp import llama_chat_format

    metadata: dict[str, str] = llm.metadata
    formatter: Any = None
    name = ""
    template = metadata.get("tokenizer.chat_template")
    if template:
        try:
            eos, bos = llm.token_eos(), llm.token_bos()
            formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, eos),
                bos_token=_token_text(llm, bos),
                stop_token_ids=[eos],
            )
            name = "from the GGUF"
        except Exception as exc:  # a template jinja2 cannot compile
            log.warning("the GGUF's chat template is unusable (%s); using a built-in one", exc)
    if formatter is None:
        if metadata.get("general.architecture", "").startswith("gemma"):
            formatter, name = llama_chat_format.format_gemma, "gemma (built in)"
        else:
            # What llama-cpp-python itself falls back to.
            formatter, name = llama_chat_format.format_llama2, "llama-2 (built in)"
    return ChatTemplate(formatter=formatter, name=name, folds_system=not keeps_system(formatter))


def keeps_system(formatter: Any) -> bool:
    """Whether ``formatter`` renders a system message (rather than refusing or
    silently dropping it)."""
    probe = [
        {"role": "system", "content": _SYSTEM_PROBE},
        {"role": "user", "content": "Hello"},
    ]
    try:
        prompt = formatter(messages=probe).prompt
    except Exception:
        return False
    return _SYSTEM_PROBE in prompt


def normalize_messages(
    messages: list[dict[str, str]], *, fold_system: bool
) -> list[dict[str, str]]:
    """Messages any chat template accepts: user and assistant alternating,
    starting with user, with the system prompt first or folded into the first
    user turn. Consecutive same-role messages are joined, empty ones and a
    leading assistant message dropped, unknown roles read as user."""
    system = "\n\n".join(
        m["content"] for m in messages if m.get("role") == "system" and m.get("content")
    )
    turns: list[dict[str, str]] = []
    for m in messages:
        role, content = m.get("role"), m.get("content") or ""
        if role == "system" or not content.strip():
            continue
        role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": turns[-1]["content"] + "\n\n" + content}
        elif turns or role == "user":
            turns.append({"role": role, "content": content})
    if not turns:
        return [{"role": "user", "content": system}]
    if not system:
        return turns
    if fold_system:
        first = turns[0]
        return [{"role": "user", "content": system + "\n\n" + first["content"]}, *turns[1:]]
    return [{"role": "system", "content": system}, *turns]


def format_prompt(template: ChatTemplate, messages: list[dict[str, str]]) -> Any:
    """The template's rendering (a llama-cpp-python ChatFormatterResponse)."""
    return template.formatter(messages=messages)


def chat_handler(formatter: Any) -> Any:
    """llama-cpp-python's own chat handler for ``formatter`` (the raw
    baseline of ``bench.local_model``)."""
    from llama_cpp import llama_chat_format

    return llama_chat_format.chat_formatter_to_chat_completion_handler(formatter)


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    return str(llm.detokenize([token], special=True).decode("utf-8", errors="ignore"))

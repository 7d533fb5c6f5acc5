"""Token counting when a backend has no tokenizer of its own, and the
estimate every stored message caches (the context walk sums it in Redis).

The estimate is one token per four characters of text, rounded up, plus a
fixed overhead per chat message for the role markers a chat template adds.
English text with BPE tokenizers (Llama, Mistral, Gemma) averages 3.5 to 4.5
characters a token, so with the reply budget held back and a safety margin
on top the prompt stays inside the context window.
"""

from __future__ import annotations

#: Characters per token for the estimate.
CHARS_PER_TOKEN = 4
#: Tokens a chat template spends on each message's role markers.
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def message_tokens(text: str) -> int:
    """A message's estimated cost in a prompt: its text and its role markers."""
    return estimate_tokens(text) + MESSAGE_OVERHEAD_TOKENS

"""What counts as a title the model wrote."""

from __future__ import annotations

import pytest

from worker.title import clean_title


@pytest.mark.parametrize(
    ("reply", "title"),
    [
        ('"Ocean Tides Explained"', "Ocean Tides Explained"),
        ("Title: **Baking Bread at Home**.\nHope that helps!", "Baking Bread at Home"),
        ("\n\n# The Roman Empire\n", "The Roman Empire"),
        # What the bundled base model writes when asked for a title: an answer.
        ("The sky is blue because the sun and moon are in a straight line", None),
        (
            "Ocean tides are caused by the gravitational pull of the moon. The ocean is a hug",
            None,
        ),
        ("Paris. It is the capital of France", None),
        ("User: What is the capital of France?", None),
        ("", None),
        ("   \n  ", None),
    ],
)
def test_a_title_is_a_short_heading_not_a_sentence(reply: str, title: str | None) -> None:
    assert clean_title(reply) == title

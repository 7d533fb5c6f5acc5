"""The moderation hook's checks: keyword and regex rules, and a classifier
endpoint in the Inference API's text-classification format (a local server
that speaks it), including what happens when it is down."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.moderation import ModerationConfig, Moderator
from tests.support.classifier import classifier_server


def moderator(config: dict[str, object]) -> Moderator:
    return Moderator(ModerationConfig.model_validate(config), env={})


async def test_off_by_default_and_when_disabled() -> None:
    assert not Moderator(None).active
    off = moderator({"enabled": False, "rules": [{"words": ["x"]}]})
    assert not off.active and await off.check("x", "input") is None


async def test_words_match_whole_words_in_any_case_and_patterns_as_written() -> None:
    m = moderator(
        {
            "reason": "Not here.",
            "rules": [
                {"words": ["secret plan"], "reason": "No plans.", "applies_to": ["input"]},
                {"pattern": r"\b\d{3}-\d{2}-\d{4}\b"},
            ],
        }
    )
    hit = await m.check("my SECRET   plan", "input")
    assert hit is None  # whole words, but the spacing differs: no match
    hit = await m.check("the Secret Plan is", "input")
    assert hit is not None and hit.reason == "No plans." and hit.rule == "rule 1"
    assert await m.check("the secret planet", "input") is None
    assert await m.check("the secret plan", "output") is None  # input only
    ssn = await m.check("ssn 123-45-6789", "output")
    assert ssn is not None and ssn.reason == "Not here." and ssn.rule == "rule 2"


def test_a_bad_pattern_or_an_empty_rule_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="regular expression"):
        ModerationConfig.model_validate({"rules": [{"pattern": "("}]})
    with pytest.raises(ValidationError, match="words"):
        ModerationConfig.model_validate({"rules": [{}]})
    with pytest.raises(ValidationError, match="labels"):
        ModerationConfig.model_validate({"classifier": {"url": "http://x"}})


async def test_a_text_classification_endpoint_blocks_above_the_threshold() -> None:
    with classifier_server() as server:
        m = moderator(
            {
                "classifier": {
                    "url": server.url + "/classify",
                    "labels": ["toxic"],
                    "threshold": 0.8,
                    "reason": "Please keep it civil.",
                }
            }
        )
        hit = await m.check("you are awful", "input")
        assert hit is not None and hit.reason == "Please keep it civil."
        assert hit.rule == "classifier: toxic 0.97"
        assert await m.check("you are lovely", "output") is None
    sent = server.requests[0]
    assert sent["body"]["inputs"] == "you are awful"
    # A URL of the operator's own gets no Hugging Face token (none configured here).
    assert "authorization" not in {k.lower() for k in sent["headers"]}


@pytest.mark.parametrize(("on_error", "blocked"), [("allow", False), ("block", True)])
async def test_an_endpoint_that_fails_lets_text_through_or_blocks_as_configured(
    on_error: str, blocked: bool
) -> None:
    with classifier_server() as server:
        m = moderator(
            {"classifier": {"url": server.url + "/down", "labels": ["toxic"], "on_error": on_error}}
        )
        hit = await m.check("anything", "input")
    assert (hit is not None) is blocked
    assert m.errors == 1

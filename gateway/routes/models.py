"""What users may pick."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.deps import CurrentUser, ServicesDep
from shared.suggestions import Suggestion, default_suggestions

router = APIRouter()


class ModelInfo(BaseModel):
    id: str
    label: str
    context_window: int
    max_tokens: int
    default: bool
    #: What the empty chat offers to ask this model.
    suggestions: list[Suggestion]
    #: The model reads attached images.
    vision: bool = False


class ModelList(BaseModel):
    models: list[ModelInfo]
    #: The longest message the gateway takes (``too_large`` beyond): the composer
    #: counts against it, so a long paste is caught before it is sent.
    max_message_chars: int


@router.get("/models")
async def list_models(_: CurrentUser, services: ServicesDep) -> ModelList:
    catalog = services.catalog
    return ModelList(
        models=[
            ModelInfo(
                id=m.id,
                label=m.display_name,
                context_window=m.context_window,
                max_tokens=m.max_tokens,
                default=m is catalog.default,
                suggestions=(
                    m.suggestions if m.suggestions is not None else default_suggestions(m.backend)
                ),
                vision=m.vision,
            )
            for m in catalog.models
        ],
        max_message_chars=services.settings.max_message_chars,
    )

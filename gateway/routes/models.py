"""What users may pick."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.admin.quotas import QuotaStatus
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
    #: The ids of the tool servers its turns may call (docs/tools.md); []:
    #: none. Never a server's address or credentials.
    tools: list[str] = []


class ModelList(BaseModel):
    models: list[ModelInfo]
    #: The longest message the gateway takes (``too_large`` beyond): the composer
    #: counts against it, so a long paste is caught before it is sent.
    max_message_chars: int


@router.get("/models")
async def list_models(user: CurrentUser, services: ServicesDep) -> ModelList:
    """The models this user may use (``shared/access.py``: the same check as
    turn acceptance); the default is the catalog's, else the first allowed."""
    catalog = services.catalog
    allowed = await services.admin.access.models_for(user.id, catalog)
    default = catalog.default if catalog.default in allowed else next(iter(allowed), None)
    return ModelList(
        models=[
            ModelInfo(
                id=m.id,
                label=m.display_name,
                context_window=m.context_window,
                max_tokens=m.max_tokens,
                default=m is default,
                suggestions=(
                    m.suggestions if m.suggestions is not None else default_suggestions(m.backend)
                ),
                vision=m.vision,
                tools=services.tools.server_ids(m.id, m.backend),
            )
            for m in allowed
        ],
        max_message_chars=services.settings.max_message_chars,
    )


@router.get("/quota")
async def my_quota(user: CurrentUser, services: ServicesDep) -> QuotaStatus:
    """What is left of today's token and message quotas (0: no limit)."""
    return await services.admin.quotas.status(user.id)

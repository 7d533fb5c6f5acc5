"""What ``tidechat up`` checks and readies before it starts a process: the
models file (and the bundled model, assembled in the foreground so its
progress shows), a Redis named by ``REDIS_URL``, and the data's layout
(migrated to this release's first). Each failure is an ``UpError`` saying
what to do."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.exceptions import RedisError

from shared.local_model import LocalModelError, bundled_model_path
from shared.models_file import LlamaCppModel, ModelsFileError
from shared.redis_client import make_redis
from shared.redis_features import explain, missing_features
from shared.settings import CommonSettings
from tidechat.migrate import Migration
from tidechat.ops import OpsError


class UpError(RuntimeError):
    """Something keeps tidechat from starting; the message says what to do."""


def prepare_models(data_dir: Path, model: Path | None) -> None:
    """Check the models file and assemble the bundled model in the
    foreground, so its progress bar shows here and not in a worker's log."""
    settings = CommonSettings()
    if model:
        settings.model_path = str(model.expanduser().resolve())
    try:
        catalog = settings.load_models()
    except ModelsFileError as exc:
        raise UpError(str(exc)) from exc
    for spec in catalog.models:
        if not isinstance(spec, LlamaCppModel):
            continue
        if spec.path:
            if not Path(spec.path).expanduser().is_file():
                raise UpError(
                    f"model {spec.id!r}: the GGUF file {spec.path} does not exist; "
                    "fix `path` in the models file (TIDECHAT_MODELS)"
                )
            continue
        try:
            bundled_model_path(data_dir, progress=True)
        except LocalModelError as exc:
            raise UpError(str(exc)) from exc


def check_external_redis(url: str) -> None:
    """A Redis named by ``REDIS_URL`` answers and has JSON and the query engine."""

    async def probe() -> list[str]:
        client = make_redis(url)
        try:
            await client.ping()
            return await missing_features(client, CommonSettings().keys)
        finally:
            await client.aclose()

    try:
        missing = asyncio.run(probe())
    except (RedisError, OSError) as exc:
        raise UpError(f"cannot reach Redis at REDIS_URL ({exc}); is it running?") from exc
    if missing:
        raise UpError(explain(missing))


def migrate(url: str) -> None:
    """Data of a previous release is migrated before anything serves it
    (``tidechat migrate``), so a newcomer never has to."""

    async def run() -> None:
        client = make_redis(url)
        try:
            migration = Migration(client, CommonSettings().keys, progress=print)
            if await migration.needed():
                print("migrating the data to this release's layout…", flush=True)
                await migration.run()
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    except (RedisError, OSError, OpsError) as exc:
        raise UpError(f"migrating the data failed ({exc}); run `tidechat migrate`") from exc

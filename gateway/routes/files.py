"""Files: upload (``POST /api/files``, multipart, field ``file``), status and
progress, list, delete. What a file is comes from its bytes
(``shared/filetypes.py``); reading and indexing it is the ingestion pool's
job (docs/documents.md). Another user's file answers 404, like a missing one.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.datastructures import UploadFile

from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import ApiError
from shared.collections import CollectionStore
from shared.conversation import ID_PATTERN, new_id, now
from shared.files import FileInfo, FileRecord
from shared.filetypes import ACCEPTED, sniff

router = APIRouter()

FileId = Annotated[str, Path(pattern=ID_PATTERN)]
#: A file name is kept for display only: cut, and without path parts.
NAME_MAX_CHARS = 200


def _display_name(raw: str | None) -> str:
    name = (raw or "file").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(c for c in name if c.isprintable())
    return name[:NAME_MAX_CHARS] or "file"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.1f} MB"


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload(
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    collection: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> FileInfo:
    """One file; answers its record (status ``queued``, or ``ready`` for an
    image); poll ``GET /api/files/{id}`` for reading and indexing progress.
    ``?collection=`` puts it in one of the caller's knowledge collections."""
    cfg = services.settings
    collections = CollectionStore(services.redis, cfg.keys)
    if collection is not None and await collections.get(user.id, collection) is None:
        raise ApiError("not_found", "collection not found")
    form = await request.form(max_files=1, max_fields=4)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError("bad_request", "send the file as the multipart field 'file'")
        data = await upload.read(cfg.max_file_bytes + 1)
        name = _display_name(upload.filename)
    finally:
        await form.close()
    if len(data) > cfg.max_file_bytes:
        raise ApiError("too_large", f"a file may be at most {_mb(cfg.max_file_bytes)}")
    if not data:
        raise ApiError("bad_request", "the file is empty")
    sniffed = sniff(data, name)
    if sniffed is None:
        raise ApiError(
            "unsupported_type", f"this kind of file is not accepted; accepted are {ACCEPTED}"
        )
    fid = new_id()
    refused = await services.files.reserve(
        user.id,
        fid,
        len(data),
        max_bytes=cfg.max_user_file_bytes,
        max_files=cfg.max_files_per_user,
    )
    if refused == "bytes":
        raise ApiError(
            "too_large",
            f"your files may take at most {_mb(cfg.max_user_file_bytes)} in all; "
            "delete some to make room",
        )
    if refused == "files":
        raise ApiError(
            "quota_exceeded",
            f"you may keep at most {cfg.max_files_per_user:,} files; delete some to make room",
        )
    record = FileRecord(
        id=fid,
        owner=user.id,
        name=name,
        kind=sniffed.kind,
        mime=sniffed.mime,
        size=len(data),
        # Images are not read or indexed: they go to vision models as they are.
        status="ready" if sniffed.kind == "image" else "queued",
        created_at=now(),
        collection=collection,
    )
    try:
        await services.files.create(record, data)
    except BaseException:
        await services.files.release(user.id, fid, len(data))
        raise
    if collection is not None and not await collections.add_file(user.id, collection, fid):
        await services.files.delete(record)  # the collection was deleted meanwhile
        raise ApiError("not_found", "collection not found")
    return record.info()


@router.get("")
async def list_files(user: CurrentUser, services: ServicesDep) -> list[FileInfo]:
    """The caller's files, newest first."""
    return [r.info() for r in await services.files.list_for_user(user.id)]


@router.get("/{file_id}")
async def get_file(file_id: FileId, user: CurrentUser, services: ServicesDep) -> FileInfo:
    record = await services.files.get_owned(file_id, user.id)
    if record is None:
        raise ApiError("not_found", "file not found")
    return record.info()


@router.get("/{file_id}/content", response_class=Response)
async def file_content(file_id: FileId, user: CurrentUser, services: ServicesDep) -> Response:
    """The file as uploaded, to its owner: images inline (thumbnails, and
    opened in a tab); anything else as a download, never rendered by the
    browser (an HTML file must not run as a page of this origin)."""
    record = await services.files.get_owned(file_id, user.id)
    data = await services.files.data(file_id) if record is not None else None
    if record is None or data is None:
        raise ApiError("not_found", "file not found")
    if record.kind == "image":
        headers = {"Content-Disposition": "inline", "Cache-Control": "private, max-age=3600"}
        return Response(data, media_type=record.mime, headers=headers)
    ascii_name = record.name.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    headers = {
        "Content-Disposition": f'attachment; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(record.name)}"
    }
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.delete("/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_file(file_id: FileId, user: CurrentUser, services: ServicesDep) -> Response:
    """The file's bytes, chunks and vectors go with it. Messages that had it
    attached keep its name; retrieval finds nothing of it any more."""
    record = await services.files.get_owned(file_id, user.id)
    if record is None:
        raise ApiError("not_found", "file not found")
    await services.files.delete(record)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

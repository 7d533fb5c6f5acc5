"""The files a message attaches: each the caller's own, none that failed."""

from __future__ import annotations

from gateway.errors import ApiError
from shared.conversation import Attachment
from shared.files import FileStore


async def resolve_attachments(
    files: FileStore, uid: str, ids: list[str], limit: int
) -> list[Attachment]:
    """The attachments for a message, in the order given (duplicates once).
    Another user's file is ``not_found``, like a missing one. A file still
    being read may be attached: the turn uses it once it is ready, and the
    reply says when it was not."""
    unique = list(dict.fromkeys(ids))
    if not unique:
        return []
    if len(unique) > limit:
        raise ApiError("too_large", f"a message may attach at most {limit} files")
    out: list[Attachment] = []
    for fid, record in zip(unique, await files.many(unique), strict=True):
        if record is None or record.owner != uid:
            raise ApiError("not_found", f"file {fid} not found")
        if record.status == "failed":
            raise ApiError("bad_request", f"{record.name} could not be read: {record.reason}")
        out.append(
            Attachment(
                file_id=fid, name=record.name, kind=record.kind, mime=record.mime, size=record.size
            )
        )
    return out

"""The files a message attaches: each the caller's own, none that failed."""

from __future__ import annotations

from gateway.errors import ApiError
from shared.conversation import Attachment, Conversation
from shared.files import FileStore
from shared.store import ConversationStore


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


async def edited_attachments(
    files: FileStore,
    store: ConversationStore,
    uid: str,
    cid: str,
    original_id: str,
    ids: list[str] | None,
    limit: int,
) -> list[Attachment]:
    """The files of an edited question: ``ids`` when the edit names them;
    otherwise the original's, those of them that still exist and did not
    fail (a file deleted since is left out, not an error)."""
    if ids is not None:
        return await resolve_attachments(files, uid, ids, limit)
    original = await store.message(cid, original_id)
    kept = [a.file_id for a in original.attachments] if original else []
    records = await files.many(kept) if kept else []
    usable = [
        fid
        for fid, r in zip(kept, records, strict=True)
        if r is not None and r.owner == uid and r.status != "failed"
    ]
    return await resolve_attachments(files, uid, usable, limit)


async def mark_missing(files: FileStore, uid: str, conv: Conversation) -> bool:
    """An imported conversation's attachments that are not the importer's
    files in this deployment (deleted since the export, another user's, or
    from another server) are marked ``missing``: the text stays, and the
    client shows a missing file rather than a broken one. Those that exist
    are marked present again. True if any mark changed."""
    attached = [a for m in conv.messages.values() for a in m.attachments]
    if not attached:
        return False
    ids = list(dict.fromkeys(a.file_id for a in attached))
    present = {
        fid
        for fid, r in zip(ids, await files.many(ids), strict=True)
        if r is not None and r.owner == uid
    }
    changed = False
    for a in attached:
        missing = a.file_id not in present
        changed |= missing != a.missing
        a.missing = missing
    return changed

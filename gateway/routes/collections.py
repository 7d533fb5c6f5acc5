"""Knowledge collections (docs/documents.md): create, list, rename and
delete a user's named sets of files; list and remove their files (uploaded
with ``POST /api/files?collection=``); attach them to a conversation.

Every route checks the caller owns what it names: a collection lives under
its owner's keys (``shared/collections.py``), so another user's id is simply
not found; a conversation is checked against its recorded owner. Either
missing or not the caller's answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import ApiError
from shared.collections import CollectionInfo, CollectionStore
from shared.conversation import ID_PATTERN, new_id
from shared.files import FileInfo
from shared.keys import COLLECTION_NAME_MAX_CHARS, MAX_ATTACHED_COLLECTIONS, MAX_COLLECTIONS

router = APIRouter()
#: Attaching, under ``/api/conversations``.
attach_router = APIRouter()

CollectionId = Annotated[str, Path(pattern=ID_PATTERN)]
FileId = Annotated[str, Path(pattern=ID_PATTERN)]
ConversationId = Annotated[str, Path(pattern=ID_PATTERN)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=COLLECTION_NAME_MAX_CHARS),
]


class CollectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


def _store(services: ServicesDep) -> CollectionStore:
    return CollectionStore(services.redis, services.settings.keys)


async def _owned(services: ServicesDep, uid: str, colid: str) -> CollectionInfo:
    found = await _store(services).get(uid, colid)
    if found is None:
        raise ApiError("not_found", "collection not found")
    return found


async def _own_conversation(services: ServicesDep, uid: str, cid: str) -> None:
    head = await services.store.head(cid)
    if head is None or head.owner != uid:
        raise ApiError("not_found", "conversation not found")


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(
    body: CollectionBody, user: CurrentUser, services: ServicesDep
) -> CollectionInfo:
    created = await _store(services).create(user.id, new_id(), body.name)
    if created is None:
        raise ApiError(
            "quota_exceeded", f"you may keep at most {MAX_COLLECTIONS} collections; delete one"
        )
    return created


@router.get("")
async def list_collections(user: CurrentUser, services: ServicesDep) -> list[CollectionInfo]:
    """The caller's collections, oldest first, with how many files each holds."""
    return await _store(services).list_for_user(user.id)


@router.get("/{collection_id}")
async def get_collection(
    collection_id: CollectionId, user: CurrentUser, services: ServicesDep
) -> CollectionInfo:
    return await _owned(services, user.id, collection_id)


@router.patch("/{collection_id}")
async def rename_collection(
    collection_id: CollectionId, body: CollectionBody, user: CurrentUser, services: ServicesDep
) -> CollectionInfo:
    if not await _store(services).rename(user.id, collection_id, body.name):
        raise ApiError("not_found", "collection not found")
    return await _owned(services, user.id, collection_id)


@router.delete("/{collection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_collection(
    collection_id: CollectionId, user: CurrentUser, services: ServicesDep
) -> Response:
    """The collection, its files (bytes, chunks, vectors) and every
    conversation's link to it. Files go first: a deletion cut short leaves
    the collection to delete again, never files nobody can see."""
    store = _store(services)
    await _owned(services, user.id, collection_id)
    for record in await services.files.many(await store.file_ids(user.id, collection_id)):
        if record is not None and record.owner == user.id:
            await services.files.delete(record)
    await store.forget(user.id, collection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{collection_id}/files")
async def collection_files(
    collection_id: CollectionId, user: CurrentUser, services: ServicesDep
) -> list[FileInfo]:
    """The collection's files with their status, newest first."""
    await _owned(services, user.id, collection_id)
    fids = await _store(services).file_ids(user.id, collection_id)
    return [r.info() for r in await services.files.many(fids) if r and r.owner == user.id]


@router.delete("/{collection_id}/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_collection_file(
    collection_id: CollectionId, file_id: FileId, user: CurrentUser, services: ServicesDep
) -> Response:
    """The file goes (bytes, chunks and vectors), as ``DELETE /api/files/{id}``."""
    record = await services.files.get_owned(file_id, user.id)
    if record is None or record.collection != collection_id:
        raise ApiError("not_found", "file not found")
    await services.files.delete(record)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@attach_router.get("/{conversation_id}/collections")
async def attached_collections(
    conversation_id: ConversationId, user: CurrentUser, services: ServicesDep
) -> list[CollectionInfo]:
    """The collections the conversation's turns retrieve from, in the order attached."""
    await _own_conversation(services, user.id, conversation_id)
    store = _store(services)
    out = []
    for colid in await store.attached(user.id, conversation_id):
        found = await store.get(user.id, colid)
        if found is not None:
            out.append(found)
    return out


@attach_router.put(
    "/{conversation_id}/collections/{collection_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def attach_collection(
    conversation_id: ConversationId,
    collection_id: CollectionId,
    user: CurrentUser,
    services: ServicesDep,
) -> Response:
    await _own_conversation(services, user.id, conversation_id)
    got = await _store(services).attach(user.id, collection_id, conversation_id)
    if got == "missing":
        raise ApiError("not_found", "collection not found")
    if got == "full":
        raise ApiError(
            "bad_request",
            f"a conversation may attach at most {MAX_ATTACHED_COLLECTIONS} collections",
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@attach_router.delete(
    "/{conversation_id}/collections/{collection_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def detach_collection(
    conversation_id: ConversationId,
    collection_id: CollectionId,
    user: CurrentUser,
    services: ServicesDep,
) -> Response:
    await _own_conversation(services, user.id, conversation_id)
    await _store(services).detach(user.id, collection_id, conversation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

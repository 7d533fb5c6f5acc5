"""Knowledge collections (docs/documents.md): create, list, rename and
delete a user's named sets of files; list and remove their files (uploaded
with ``POST /api/files?collection=``); attach them to a conversation.

Every route checks the caller owns what it names: a collection lives under
its owner's keys (``shared/collections.py``), so another user's id is simply
not found; a conversation is checked against its recorded owner. Either
missing or not the caller's answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.deps import CurrentUser, ServicesDep
from gateway.errors import ApiError
from shared.collections import CollectionInfo, CollectionStore
from shared.conversation import ID_PATTERN, new_id
from shared.files import FileInfo, FileRecord, FileStore
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


@dataclass(frozen=True, slots=True)
class Caller:
    uid: str
    store: CollectionStore
    files: FileStore


async def _caller(user: CurrentUser, services: ServicesDep) -> Caller:
    return Caller(user.id, CollectionStore(services.redis, services.settings.keys), services.files)


CallerDep = Annotated[Caller, Depends(_caller)]


async def _collection(collection_id: CollectionId, caller: CallerDep) -> CollectionInfo:
    """The caller's collection named in the path; another user's is not found."""
    found = await caller.store.get(caller.uid, collection_id)
    if found is None:
        raise ApiError("not_found", "collection not found")
    return found


async def _conversation(
    conversation_id: ConversationId, user: CurrentUser, services: ServicesDep
) -> str:
    """The conversation named in the path, checked against its recorded owner."""
    head = await services.store.head(conversation_id)
    if head is None or head.owner != user.id:
        raise ApiError("not_found", "conversation not found")
    return conversation_id


OwnedCollection = Annotated[CollectionInfo, Depends(_collection)]
OwnedConversation = Annotated[str, Depends(_conversation)]
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_collection(body: CollectionBody, caller: CallerDep) -> CollectionInfo:
    created = await caller.store.create(caller.uid, new_id(), body.name)
    if created is None:
        raise ApiError(
            "quota_exceeded", f"you may keep at most {MAX_COLLECTIONS} collections; delete one"
        )
    return created


@router.get("")
async def list_collections(caller: CallerDep) -> list[CollectionInfo]:
    """The caller's collections, oldest first, with how many files each holds."""
    return await caller.store.list_for_user(caller.uid)


@router.get("/{collection_id}")
async def get_collection(collection: OwnedCollection) -> CollectionInfo:
    return collection


@router.patch("/{collection_id}")
async def rename_collection(
    collection: OwnedCollection, body: CollectionBody, caller: CallerDep
) -> CollectionInfo:
    if not await caller.store.rename(caller.uid, collection.id, body.name):
        raise ApiError("not_found", "collection not found")
    return collection.model_copy(update={"name": body.name})


async def _files(caller: Caller, colid: str) -> list[FileRecord]:
    fids = await caller.store.file_ids(caller.uid, colid)
    return [r for r in await caller.files.many(fids) if r is not None and r.owner == caller.uid]


@router.delete("/{collection_id}", status_code=NO_CONTENT)
async def delete_collection(collection: OwnedCollection, caller: CallerDep) -> Response:
    """The collection, its files (bytes, chunks, vectors) and every
    conversation's link to it. Files go first: a deletion cut short leaves
    the collection to delete again, never files nobody can see."""
    for record in await _files(caller, collection.id):
        await caller.files.delete(record)
    await caller.store.forget(caller.uid, collection.id)
    return Response(status_code=NO_CONTENT)


@router.get("/{collection_id}/files")
async def collection_files(collection: OwnedCollection, caller: CallerDep) -> list[FileInfo]:
    """The collection's files with their status, newest first."""
    return [r.info() for r in await _files(caller, collection.id)]


@router.delete("/{collection_id}/files/{file_id}", status_code=NO_CONTENT)
async def remove_collection_file(
    collection: OwnedCollection, file_id: FileId, caller: CallerDep
) -> Response:
    """The file goes (bytes, chunks and vectors), as ``DELETE /api/files/{id}``."""
    record = await caller.files.get_owned(file_id, caller.uid)
    if record is None or record.collection != collection.id:
        raise ApiError("not_found", "file not found")
    await caller.files.delete(record)
    return Response(status_code=NO_CONTENT)


@attach_router.get("/{conversation_id}/collections")
async def attached_collections(cid: OwnedConversation, caller: CallerDep) -> list[CollectionInfo]:
    """The collections the conversation's turns retrieve from, in the order attached."""
    found = [
        await caller.store.get(caller.uid, c) for c in await caller.store.attached(caller.uid, cid)
    ]
    return [c for c in found if c is not None]


@attach_router.put("/{conversation_id}/collections/{collection_id}", status_code=NO_CONTENT)
async def attach_collection(
    cid: OwnedConversation, collection_id: CollectionId, caller: CallerDep
) -> Response:
    got = await caller.store.attach(caller.uid, collection_id, cid)
    if got == "missing":
        raise ApiError("not_found", "collection not found")
    if got == "full":
        limit = MAX_ATTACHED_COLLECTIONS
        raise ApiError("bad_request", f"a conversation may attach at most {limit} collections")
    return Response(status_code=NO_CONTENT)


@attach_router.delete("/{conversation_id}/collections/{collection_id}", status_code=NO_CONTENT)
async def detach_collection(
    cid: OwnedConversation, collection_id: CollectionId, caller: CallerDep
) -> Response:
    """Detaching one that is not attached (or not the caller's) changes nothing."""
    await caller.store.detach(caller.uid, collection_id, cid)
    return Response(status_code=NO_CONTENT)

"""Knowledge collections: named sets of a user's files (a team handbook) that
a conversation attaches, so its turns retrieve from them too
(docs/documents.md, "Knowledge collections").

A collection's files are ordinary files (``shared/files.py``: uploaded the
same way, read by the same ingestion pool, counted in the same limits), each
recording the collection it belongs to. Every key here is tagged by the
owner (``shared/keys.py``), so each change is one script on one slot: the
collections hash, each collection's file set, and the hash of which
conversations attach which collections. The owner is part of every key
name: a caller can only ever reach their own collections.
"""

from __future__ import annotations

import json
from typing import Any, Literal, cast

from pydantic import BaseModel
from redis.asyncio import Redis

from shared.conversation import now
from shared.keys import MAX_ATTACHED_COLLECTIONS, MAX_COLLECTIONS, Keys

#: KEYS: collections. ARGV: id, record JSON, max. 1 created; 0 at the limit.
_CREATE = """
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: collections. ARGV: id, name. 1 renamed; 0 no such collection.
_RENAME = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record['name'] = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
"""

#: KEYS: collections, collection_files. ARGV: id, file id, score.
#: 1 added; 0 the collection is gone (deleted while the file was uploaded).
_ADD_FILE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
"""

#: Lua helpers on a comma-separated id list.
_LIST = """
local function split(s)
  local out = {}
  if s then for id in string.gmatch(s, '[^,]+') do out[#out + 1] = id end end
  return out
end
local function without(list, id)
  local out = {}
  for _, x in ipairs(list) do if x ~= id then out[#out + 1] = x end end
  return out
end
local function store(key, field, list)
  if #list == 0 then redis.call('HDEL', key, field)
  else redis.call('HSET', key, field, table.concat(list, ',')) end
end
"""

#: KEYS: collections, attached. ARGV: collection id, conversation id, max.
#: 1 attached (or already); 0 no such collection; -1 the conversation is at the limit.
_ATTACH = (
    _LIST
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local list = split(redis.call('HGET', KEYS[2], ARGV[2]))
for _, x in ipairs(list) do if x == ARGV[1] then return 1 end end
if #list >= tonumber(ARGV[3]) then return -1 end
list[#list + 1] = ARGV[1]
store(KEYS[2], ARGV[2], list)
return 1
"""
)

#: KEYS: attached. ARGV: collection id, conversation id.
_DETACH = (
    _LIST
    + """
store(KEYS[1], ARGV[2], without(split(redis.call('HGET', KEYS[1], ARGV[2])), ARGV[1]))
return 1
"""
)

#: KEYS: collections, collection_files, attached. ARGV: id. The collection,
#: its file set, and every conversation's link to it, at once.
_DELETE = (
    _LIST
    + """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
local links = redis.call('HGETALL', KEYS[3])
for i = 1, #links, 2 do
  if string.find(',' .. links[i + 1] .. ',', ',' .. ARGV[1] .. ',', 1, true) then
    store(KEYS[3], links[i], without(split(links[i + 1]), ARGV[1]))
  end
end
return 1
"""
)


class CollectionInfo(BaseModel):
    """A collection as its owner sees it (``GET /api/collections``)."""

    id: str
    name: str
    created_at: float
    files: int = 0


class CollectionStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def _eval(self, script: str, keys: list[str], *args: str | int) -> int:
        return int(await cast(Any, self.redis.eval(script, len(keys), *keys, *args)))

    async def create(self, uid: str, colid: str, name: str) -> CollectionInfo | None:
        """The new collection, or None: the user keeps ``MAX_COLLECTIONS`` already."""
        info = CollectionInfo(id=colid, name=name, created_at=now())
        record = json.dumps({"name": name, "created_at": info.created_at})
        created = await self._eval(
            _CREATE, [self.keys.collections(uid)], colid, record, MAX_COLLECTIONS
        )
        return info if created else None

    async def list_for_user(self, uid: str) -> list[CollectionInfo]:
        """The user's collections, oldest first, with their file counts."""
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.collections(uid)))
        ids = sorted(raw, key=lambda c: (json.loads(raw[c])["created_at"], c))
        pipe = self.redis.pipeline(transaction=False)
        for colid in ids:
            pipe.zcard(self.keys.collection_files(uid, colid))
        counts = await pipe.execute()
        return [
            CollectionInfo(id=c, files=int(n), **json.loads(raw[c]))
            for c, n in zip(ids, counts, strict=True)
        ]

    async def get(self, uid: str, colid: str) -> CollectionInfo | None:
        """One of the user's collections; None for a missing one, or another user's."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.collections(uid), colid)
        pipe.zcard(self.keys.collection_files(uid, colid))
        raw, count = await pipe.execute()
        if raw is None:
            return None
        return CollectionInfo(id=colid, files=int(count), **json.loads(raw))

    async def rename(self, uid: str, colid: str, name: str) -> bool:
        return bool(await self._eval(_RENAME, [self.keys.collections(uid)], colid, name))

    async def add_file(self, uid: str, colid: str, fid: str) -> bool:
        """False when the collection is gone (the caller deletes the file)."""
        keys = [self.keys.collections(uid), self.keys.collection_files(uid, colid)]
        return bool(await self._eval(_ADD_FILE, keys, colid, fid, int(now() * 1000)))

    async def file_ids(self, uid: str, colid: str) -> list[str]:
        """The collection's files, newest first."""
        got = await self.redis.zrevrange(self.keys.collection_files(uid, colid), 0, -1)
        return [str(f) for f in got]

    async def forget(self, uid: str, colid: str) -> bool:
        """Remove the collection, its file set and every conversation's link
        to it (its files are the caller's to delete first: ``delete_collection``)."""
        keys = [
            self.keys.collections(uid),
            self.keys.collection_files(uid, colid),
            self.keys.attached_collections(uid),
        ]
        return bool(await self._eval(_DELETE, keys, colid))

    async def attach(self, uid: str, colid: str, cid: str) -> Literal["ok", "missing", "full"]:
        """Attach the caller's collection to a conversation (the caller checks
        the conversation is theirs)."""
        keys = [self.keys.collections(uid), self.keys.attached_collections(uid)]
        got = await self._eval(_ATTACH, keys, colid, cid, MAX_ATTACHED_COLLECTIONS)
        return {1: "ok", 0: "missing", -1: "full"}[got]  # type: ignore[return-value]

    async def detach(self, uid: str, colid: str, cid: str) -> None:
        await self._eval(_DETACH, [self.keys.attached_collections(uid)], colid, cid)

    async def attached(self, uid: str, cid: str) -> list[str]:
        """The ids of the collections a conversation attaches, in order
        (those deleted since are already gone from the list)."""
        raw = await self.redis.hget(self.keys.attached_collections(uid), cid)
        return [c for c in str(raw).split(",") if c] if raw else []

    async def conversation_file_ids(self, uid: str, cid: str) -> list[str]:
        """Every file of every collection the conversation attaches (retrieval)."""
        colids = await self.attached(uid, cid)
        if not colids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for colid in colids:
            pipe.zrange(self.keys.collection_files(uid, colid), 0, -1)
        seen: dict[str, None] = {}
        for fids in await pipe.execute():
            seen.update(dict.fromkeys(str(f) for f in fids))
        return list(seen)

    async def conversation_gone(self, uid: str, cid: str) -> None:
        """A deleted conversation attaches nothing any more."""
        await self.redis.hdel(self.keys.attached_collections(uid), cid)

    async def delete_all_keys(self, uid: str) -> None:
        """Every collection key of the user (account deletion, after their files)."""
        colids = await self.redis.hkeys(self.keys.collections(uid))
        await self.redis.delete(
            self.keys.collections(uid),
            self.keys.attached_collections(uid),
            *(self.keys.collection_files(uid, str(c)) for c in colids),
        )

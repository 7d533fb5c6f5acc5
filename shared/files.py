"""Uploaded files: their records, bytes and per-user limits, shared by the
gateway (upload, status, delete) and the ingestion workers (progress).

A file is three kinds of keys, all tagged by the file id so they share a
slot: its record (a hash: owner, name, kind, status, progress), its bytes,
and its chunks (``chunk(fid, n)``, written by ingestion and indexed by the
query engine). The user's list of files and their byte counter are tagged by
the user, and checked and added in one script, so two gateways cannot both
let a user past the limit.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.conversation import now
from shared.filetypes import FileKind
from shared.keys import Keys
from shared.streams import IngestJob, queue_ingest_job

FileStatus = Literal["queued", "reading", "indexing", "ready", "failed"]

#: Statuses after which a file changes no more.
FINAL_STATUSES: frozenset[str] = frozenset({"ready", "failed"})

#: KEYS: user_files, user_file_usage. ARGV: fid, size, score, max bytes, max files.
#: Returns 1 (reserved), or the limit that refused it: -1 bytes, -2 files.
_RESERVE = """
local used = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local count = redis.call('ZCARD', KEYS[1])
if tonumber(ARGV[4]) > 0 and used + tonumber(ARGV[2]) > tonumber(ARGV[4]) then return -1 end
if tonumber(ARGV[5]) > 0 and count + 1 > tonumber(ARGV[5]) then return -2 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'bytes', ARGV[2])
return 1
"""

#: KEYS: file. ARGV: field, value, ... Only on a record that still exists (a
#: file deleted while it was read must not come back as a bare status).
_UPDATE_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

#: KEYS: user_files, user_file_usage. ARGV: fid, size. Gives back once.
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(ARGV[2]))
end
return 1
"""


class FileInfo(BaseModel):
    """A file as its owner sees it (``GET /api/files/{id}``)."""

    id: str
    name: str
    kind: FileKind
    mime: str
    size: int
    status: FileStatus
    #: Why the file failed (``status`` "failed"), in words for the user.
    reason: str | None = None
    #: Pages read (PDF), once extraction finished.
    pages: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    created_at: float = 0.0
    #: The knowledge collection the file belongs to (shared/collections.py);
    #: None for a file attached to messages.
    collection: str | None = None


class FileRecord(FileInfo):
    """The stored record: the view plus its owner and the embedder that indexed it."""

    owner: str
    embedder: str | None = None

    def info(self) -> FileInfo:
        return FileInfo.model_validate(self.model_dump(exclude={"owner", "embedder"}))

    def to_hash(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}


class FileStore:
    """``raw``: a client without response decoding, for the file's bytes."""

    def __init__(self, redis: Redis, keys: Keys, raw: Redis | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.raw = raw

    async def reserve(
        self, uid: str, fid: str, size: int, *, max_bytes: int, max_files: int
    ) -> Literal["ok", "bytes", "files"]:
        got = await cast(
            Any,
            self.redis.eval(
                _RESERVE,
                2,
                self.keys.user_files(uid),
                self.keys.user_file_usage(uid),
                fid,
                size,
                int(now() * 1000),
                max_bytes,
                max_files,
            ),
        )
        return {1: "ok", -1: "bytes", -2: "files"}[int(got)]  # type: ignore[return-value]

    async def release(self, uid: str, fid: str, size: int) -> None:
        await cast(
            Any,
            self.redis.eval(
                _RELEASE, 2, self.keys.user_files(uid), self.keys.user_file_usage(uid), fid, size
            ),
        )

    async def create(self, record: FileRecord, data: bytes) -> None:
        """Store the record and the bytes, and queue the job: one pipeline,
        record first, so a worker never reads a job without its file."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.file(record.id), mapping=cast(Any, record.to_hash()))
        pipe.set(self.keys.file_bytes(record.id), data)
        if record.kind != "image":  # images are sent as they are, not indexed
            queue_ingest_job(pipe, self.keys, IngestJob(file_id=record.id, user_id=record.owner))
        await pipe.execute()

    async def get(self, fid: str) -> FileRecord | None:
        raw = await cast(Any, self.redis.hgetall(self.keys.file(fid)))
        if not raw or "owner" not in raw:
            return None
        return FileRecord.model_validate(raw)

    async def get_owned(self, fid: str, uid: str) -> FileRecord | None:
        record = await self.get(fid)
        return record if record is not None and record.owner == uid else None

    async def many(self, fids: list[str]) -> list[FileRecord | None]:
        pipe = self.redis.pipeline(transaction=False)
        for fid in fids:
            pipe.hgetall(self.keys.file(fid))
        out: list[FileRecord | None] = []
        for raw in await pipe.execute():
            out.append(FileRecord.model_validate(raw) if raw and "owner" in raw else None)
        return out

    async def list_for_user(self, uid: str, limit: int = 200) -> list[FileRecord]:
        fids = await self.redis.zrevrange(self.keys.user_files(uid), 0, limit - 1)
        return [r for r in await self.many([str(f) for f in fids]) if r is not None]

    async def data(self, fid: str) -> bytes | None:
        if self.raw is None:
            raise RuntimeError("reading a file's bytes needs the store's raw client")
        got = await self.raw.get(self.keys.file_bytes(fid))
        return got if isinstance(got, bytes) or got is None else got.encode()

    def queue_update(self, pipe: Pipeline, fid: str, **fields: object) -> None:
        """Progress and status (workers), on a record that still exists;
        a field given as None is removed."""
        args = [x for k, v in fields.items() if v is not None for x in (k, str(v))]
        if args:
            pipe.eval(_UPDATE_EXISTING, 1, self.keys.file(fid), *args)
        for k, v in fields.items():
            if v is None:
                pipe.hdel(self.keys.file(fid), k)

    def queue_delete_chunks(self, pipe: Pipeline, fid: str, count: int) -> None:
        chunks = [self.keys.chunk(fid, n) for n in range(count)]
        for start in range(0, len(chunks), 500):
            pipe.delete(*chunks[start : start + 500])

    async def delete(self, record: FileRecord) -> None:
        """The file's bytes, chunks (and so their vectors) and record (and
        its place in its collection), then the user's counters."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_delete_chunks(pipe, record.id, record.chunks_total)
        pipe.delete(self.keys.file_bytes(record.id), self.keys.file(record.id))
        if record.collection:
            pipe.zrem(self.keys.collection_files(record.owner, record.collection), record.id)
        await pipe.execute()
        await self.release(record.owner, record.id, record.size)

"""The conversation store's scripts: every read and write of a conversation
that must see or change several of its keys at once.

(Over 300 lines on purpose: it is script text only, one constant per
script, each with its contract above it; the field names and the walk they
share are defined once here, so splitting it would scatter that contract.)

Each script is called with a conversation's hash (``KEYS[1]``) and tree
(``KEYS[2]``), and builds the keys of its messages from their prefix
(``ARGV[1]``, ``tc:msg:{cid}:``): every key one script touches carries the
conversation id as its hash tag, so it stays in one Redis Cluster slot. All
start with ``#!lua``, so a cluster node (and the tests' one-node cluster)
refuses any key of another slot; reads say ``flags=no-writes``, so they run
on a Redis that refuses writes (maxmemory reached) and on replicas.

A message hash holds ``o`` (owner, for the search filter), ``p`` (parent
id, ``''`` for a root), ``r`` (role), ``t`` (text), ``c`` (created), ``n``
(estimated tokens) and ``x`` (the other fields as JSON, absent when empty).
The tree hash maps a parent id (``^`` for the roots) to its children's ids,
comma-separated, oldest first, and holds the conversation's changing state
under names no id can take: ``.cur`` (current leaf), ``.ua`` (updated at),
``.n`` (messages), ``.b`` (bytes of text), ``.r1`` (has had a reply).
"""

from __future__ import annotations

#: Fields read for a message by the walks, in this order.
MESSAGE_FIELDS = ("p", "r", "t", "c", "x")

_COMMON = """
local function kids_of(tree, id)
  local csv = redis.call('HGET', tree, id == '' and '^' or id)
  local out = {}
  if csv then for k in string.gmatch(csv, '[^,]+') do out[#out + 1] = k end end
  return out, csv
end
local function alive(meta)
  local m = redis.call('HMGET', meta, 'o', 'del')
  if not m[1] or m[2] then return false end
  return m[1]
end
"""

#: Add a message, or store it again (same id: harmless; nothing is counted
#: twice). KEYS: conversation, tree. ARGV: message prefix, writer (must own
#: the conversation), id, parent ('' root), role, text, created, tokens,
#: extras JSON ('' none), set current ('1'/'0'), a client frame's marker key
#: ('' none), its TTL, and '' or the conversation's fields as JSON
#: ({t, m, sp, ca}) to create it when it does not exist, and '' or the
#: current leaf the writer expects (a message sent onto what its tab shows:
#: another tab may have added one meanwhile). Returns {status, new, first
#: reply[, current leaf]}: status 1 stored, 0 the frame was acted on already
#: (nothing written), -1 no such conversation of the writer's (or being
#: deleted), -2 the parent does not exist, -3 the current leaf is not the
#: one expected (nothing written, no marker: the frame may be sent again).
#: A message of a conversation that expires (a replay's copy) expires with it.
ADD = (
    "#!lua\n"
    + _COMMON
    + """
local owner = alive(KEYS[1])
if not owner and ARGV[13] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then
  local c = cjson.decode(ARGV[13])
  redis.call('HSET', KEYS[1], 'o', ARGV[2], 't', c.t, 'm', c.m, 'sp', c.sp, 'ca', c.ca)
  redis.call('HSET', KEYS[2], '.cur', '', '.ua', c.ca, '.n', 0, '.b', 0)
  owner = ARGV[2]
end
if owner ~= ARGV[2] then return {-1, 0, 0} end
if ARGV[14] ~= '' then
  local current = redis.call('HGET', KEYS[2], '.cur') or ''
  if current ~= ARGV[14] then return {-3, 0, 0, current} end
end
local parent = ARGV[4]
if parent ~= '' and redis.call('EXISTS', ARGV[1] .. parent) == 0 then return {-2, 0, 0} end
if ARGV[11] ~= '' and not redis.call('SET', ARGV[11], ARGV[3], 'NX', 'EX', ARGV[12]) then
  return {0, 0, 0}
end
local key = ARGV[1] .. ARGV[3]
local new = redis.call('EXISTS', key) == 0
local was = new and 0 or redis.call('HSTRLEN', key, 't')
local fields = {'o', owner, 'p', parent, 'r', ARGV[5], 't', ARGV[6], 'c', ARGV[7], 'n', ARGV[8]}
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'x'
  fields[#fields + 1] = ARGV[9]
elseif not new then
  redis.call('HDEL', key, 'x')
end
redis.call('HSET', key, unpack(fields))
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
if new then
  local slot = parent == '' and '^' or parent
  local kids = redis.call('HGET', KEYS[2], slot)
  redis.call('HSET', KEYS[2], slot, kids and (kids .. ',' .. ARGV[3]) or ARGV[3])
  redis.call('HINCRBY', KEYS[2], '.n', 1)
end
if #ARGV[6] ~= was then redis.call('HINCRBY', KEYS[2], '.b', #ARGV[6] - was) end
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[2], '.ua', ARGV[7], '.cur', ARGV[3])
else
  redis.call('HSET', KEYS[2], '.ua', ARGV[7])
end
local first = 0
if ARGV[5] == 'assistant' then first = redis.call('HSETNX', KEYS[2], '.r1', '1') end
return {1, new and 1 or 0, first}
"""
)

#: The walk from a message up its branch, newest first, until the estimated
#: tokens reach the budget or the text read reaches the byte cap (what one
#: call may hold Redis for: a long context is read in a few calls, none
#: long). ``id`` is a Lua local of the caller; rows are {id, p, r, t, c, x}.
_WALK = """
local function walk(prefix, id, budget, most, cap)
  local out, total, bytes = {}, 0, 0
  while id ~= '' and #out < most and total < budget and bytes < cap do
    local m = redis.call('HMGET', prefix .. id, 'p', 'r', 't', 'c', 'x', 'n')
    if not m[2] then break end
    out[#out + 1] = {id, m[1], m[2], m[3], m[4], m[5]}
    total = total + (tonumber(m[6]) or 0)
    bytes = bytes + #m[3]
    id = m[1]
  end
  return out, total
end
"""

#: What a turn needs, in one read: the walk from the question up its
#: branch (``_WALK``; the worker then counts exactly and trims). KEYS:
#: conversation, tree. ARGV: message prefix, leaf, turn id, token budget,
#: most messages, most bytes of text. Returns false (no such conversation),
#: or {owner, system prompt, had a reply, the turn's reply if stored already
#: (HGETALL, or empty), the walk, the tokens it holds}.
CONTEXT = (
    "#!lua flags=no-writes\n"
    + _COMMON
    + _WALK
    + """
local owner = alive(KEYS[1])
if not owner then return false end
local system = redis.call('HGET', KEYS[1], 'sp') or ''
local replied = redis.call('HEXISTS', KEYS[2], '.r1')
local reply = redis.call('HGETALL', ARGV[1] .. ARGV[3])
local out, total = walk(ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
return {owner, system, replied, reply, out, total}
"""
)

#: More of a turn's walk (when ``CONTEXT`` stopped at its byte cap). KEYS:
#: conversation, tree. ARGV: as CONTEXT's, from the next message up.
#: Returns false (gone meanwhile), or {the walk, its tokens}.
CONTEXT_MORE = (
    "#!lua flags=no-writes\n"
    + _COMMON
    + _WALK
    + """
if not alive(KEYS[1]) then return false end
local out, total = walk(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
return {out, total}
"""
)

#: A page of a branch for the API, from a leaf up. KEYS: conversation,
#: tree. ARGV: message prefix, leaf ('' the current one), most messages,
#: most bytes of text (at least one message is returned). Returns false, or
#: {the conversation's fields (HGETALL), {current leaf, updated at,
#: messages}, the page newest first: {id, p, r, t, c, x, children csv}...,
#: the oldest message's siblings (csv)}.
PAGE = (
    "#!lua flags=no-writes\n"
    + _COMMON
    + """
if not alive(KEYS[1]) then return false end
local state = redis.call('HMGET', KEYS[2], '.cur', '.ua', '.n')
local id = ARGV[2] ~= '' and ARGV[2] or (state[1] or '')
local out, bytes = {}, 0
local most, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local top = false
while id ~= '' and #out < most and (bytes < budget or #out == 0) do
  local m = redis.call('HMGET', ARGV[1] .. id, 'p', 'r', 't', 'c', 'x')
  if not m[2] then break end
  out[#out + 1] = {id, m[1], m[2], m[3], m[4], m[5], redis.call('HGET', KEYS[2], id) or ''}
  bytes = bytes + #m[3]
  top = m[1]
  id = m[1]
end
local siblings = ''
if top then siblings = redis.call('HGET', KEYS[2], top == '' and '^' or top) or '' end
return {redis.call('HGETALL', KEYS[1]), state, out, siblings}
"""
)

#: A page down a branch: from a message along its newest children (the
#: branch a switch to it shows). KEYS: conversation, tree. ARGV: message
#: prefix, start id, include the start ('1'/'0'), most messages, most
#: bytes. Returns false, or {the page top first (as PAGE's), the start's
#: siblings (csv), reached the leaf (1/0)}.
DOWN = (
    "#!lua flags=no-writes\n"
    + _COMMON
    + """
if not alive(KEYS[1]) then return false end
local start = redis.call('HMGET', ARGV[1] .. ARGV[2], 'p', 'r')
if not start[2] then return false end
local out, bytes = {}, 0
local most, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local id = ARGV[2]
if ARGV[3] ~= '1' then
  local kids = kids_of(KEYS[2], id)
  id = kids[#kids] or ''
end
local leaf = false
while id ~= '' do
  if #out >= most or (bytes >= budget and #out > 0) then break end
  local m = redis.call('HMGET', ARGV[1] .. id, 'p', 'r', 't', 'c', 'x')
  if not m[2] then break end
  local kids, csv = kids_of(KEYS[2], id)
  out[#out + 1] = {id, m[1], m[2], m[3], m[4], m[5], csv or ''}
  bytes = bytes + #m[3]
  id = kids[#kids] or ''
  if id == '' then leaf = true end
end
if ARGV[3] ~= '1' and #out == 0 then leaf = true end
local siblings = redis.call('HGET', KEYS[2], start[1] == '' and '^' or start[1]) or ''
return {out, siblings, leaf and 1 or 0}
"""
)

#: The newest leaf under a message: its newest child's newest child...,
#: at most ARGV[3] steps a call (a long branch takes a few calls, none of
#: them long). KEYS: conversation, tree. ARGV: message prefix, start id,
#: most steps. Returns false (no such message), or {the id reached, 1 if
#: it is a leaf}.
NEWEST_LEAF = (
    "#!lua flags=no-writes\n"
    + _COMMON
    + """
if not alive(KEYS[1]) or redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 0 then return false end
local id = ARGV[2]
for _ = 1, tonumber(ARGV[3]) do
  local kids = kids_of(KEYS[2], id)
  if #kids == 0 then return {id, 1} end
  id = kids[#kids]
end
local kids = kids_of(KEYS[2], id)
return {id, #kids == 0 and 1 or 0}
"""
)

#: Change a conversation: its own fields and/or the current leaf (which
#: must exist). KEYS: conversation, tree. ARGV: message prefix, owner,
#: updated at, current leaf ('' unchanged), then field/value pairs of the
#: conversation hash (t, m, sp). Returns 1, -1 (no such conversation of
#: the owner's) or -2 (no such message).
UPDATE = (
    "#!lua\n"
    + _COMMON
    + """
if alive(KEYS[1]) ~= ARGV[2] then return -1 end
if ARGV[4] ~= '' and redis.call('EXISTS', ARGV[1] .. ARGV[4]) == 0 then return -2 end
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], '.cur', ARGV[4], '.ua', ARGV[3])
else
  redis.call('HSET', KEYS[2], '.ua', ARGV[3])
end
return 1
"""
)

#: The title a worker made, unless the user chose one meanwhile (the title
#: is still ARGV[2] or 'New chat'). KEYS: conversation. ARGV: title, the
#: fallback title. Returns 1 when set.
TITLE = """#!lua
local t = redis.call('HGET', KEYS[1], 't')
if not t or redis.call('HEXISTS', KEYS[1], 'del') == 1 then return 0 end
if t ~= ARGV[2] and t ~= 'New chat' then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[1])
return 1
"""

#: First step of deleting: the conversation disappears for every reader and
#: writer (``del``), and what it held is returned once more for the owner's
#: counters (a retry of a half-done delete gets the same). KEYS:
#: conversation, tree. ARGV: owner. Returns {-1} or {1, messages, bytes}.
MARK_DELETED = """#!lua
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return {-1} end
redis.call('HSET', KEYS[1], 'del', '1')
local s = redis.call('HMGET', KEYS[2], '.n', '.b')
return {1, tonumber(s[1] or '0'), tonumber(s[2] or '0')}
"""

#: Then the messages go, a bounded batch a call (HSCAN of the tree), and
#: with the last batch the conversation and its tree. KEYS: conversation,
#: tree. ARGV: message prefix, cursor, fields per batch. Returns {next
#: cursor ('0': done), messages deleted}.
PURGE = """#!lua
local scan = redis.call('HSCAN', KEYS[2], ARGV[2], 'COUNT', ARGV[3])
local gone = 0
local rows = scan[2]
for i = 1, #rows, 2 do
  if string.sub(rows[i], 1, 1) ~= '.' then
    for id in string.gmatch(rows[i + 1], '[^,]+') do
      gone = gone + redis.call('DEL', ARGV[1] .. id)
    end
  end
end
if scan[1] == '0' then redis.call('DEL', KEYS[1], KEYS[2]) end
return {scan[1], gone}
"""

#: Take a failed reply out again (``tidechat dead retry`` requeues its
#: turn, whose reply takes its place). Only a reply that failed: a reply
#: that has landed meanwhile stays. KEYS: conversation, tree. ARGV: message
#: prefix, id. Returns {1, bytes of its text} or {0, 0}.
REMOVE_FAILED = (
    "#!lua\n"
    + _COMMON
    + """
local key = ARGV[1] .. ARGV[2]
local m = redis.call('HMGET', key, 'p', 'x', 't')
if not m[1] then return {0, 0} end
local x = m[2] and cjson.decode(m[2]) or {}
if x.finish_reason ~= 'error' then return {0, 0} end
local slot = m[1] == '' and '^' or m[1]
local kids = kids_of(KEYS[2], m[1])
local keep = {}
for _, k in ipairs(kids) do if k ~= ARGV[2] then keep[#keep + 1] = k end end
if #keep == 0 then redis.call('HDEL', KEYS[2], slot)
else redis.call('HSET', KEYS[2], slot, table.concat(keep, ',')) end
redis.call('DEL', key)
redis.call('HINCRBY', KEYS[2], '.n', -1)
redis.call('HINCRBY', KEYS[2], '.b', -#(m[3] or ''))
if redis.call('HGET', KEYS[2], '.cur') == ARGV[2] then redis.call('HSET', KEYS[2], '.cur', m[1]) end
return {1, #(m[3] or '')}
"""
)


#: Messages written in bulk (an import, the migration): one call per batch,
#: its messages as one JSON argument (packing every field of every message
#: as a command argument costs the client more than Redis takes to store
#: them). KEYS: conversation (its slot). ARGV: message prefix, JSON array of
#: [id, owner, parent, role, text, created, tokens, extras], TTL seconds
#: (0: none). Returns how many were written. One HSET a message: the
#: query engine indexes a hash again on every write to it.
BULK_MESSAGES = """#!lua
local rows = cjson.decode(ARGV[2])
local ttl = tonumber(ARGV[3])
for _, m in ipairs(rows) do
  local key = ARGV[1] .. m[1]
  redis.call('DEL', key)
  local f = {'o', m[2], 'p', m[3], 'r', m[4], 't', m[5], 'c', m[6], 'n', m[7]}
  if m[8] ~= '' then f[#f + 1] = 'x'; f[#f + 1] = m[8] end
  redis.call('HSET', key, unpack(f))
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
return #rows
"""

#: A tree hash written in bulk: its fields as one JSON object. KEYS: the
#: tree. ARGV: the JSON, '1' to delete the hash first.
BULK_TREE = """#!lua
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
for field, value in pairs(cjson.decode(ARGV[1])) do
  redis.call('HSET', KEYS[1], field, value)
end
return 1
"""

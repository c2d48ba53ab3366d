"""Server-side (Lua) scripts of the Redis Streams transport.

Each script runs atomically in Redis, so a read, its dedupe decisions and the acknowledgement
of duplicates happen in one round trip that no other client can interleave with. (An ack is
plain XACK commands in a pipeline; see ``RedisStreamsRouter._commit``.) Common
arguments: ``KEYS`` = the destination's band streams (highest priority first, see
``redis_keys.Keys.bands``) followed by its counters hash; ``ARGV`` starts with the group, the
consumer name, the dedupe-key prefix and the dedupe TTL in seconds.

The dedupe record of a message (``<prefix><ULID>``) names the entry that carries it and the
consumer holding it (``<stream>|<entry>|<consumer>``); it stays after the ack (an acked entry
is never delivered again, so the record marks every other copy as a duplicate) and becomes
``dead`` when the message is dead-lettered. ``claim()`` decides per delivered entry:

* no record: take it (write ours) and deliver;
* ``dead`` (or ``done``, written by earlier versions): a copy of a finished message: ack, skip;
* ``<stream>|<entry>|<consumer>|done`` (an ack that committed writes, see
  ``redis_recovery.PendingRecovery.commit_with_effects``): names no carrier, so every copy,
  the committed entry included, is a duplicate: ack, skip;
* a record for the same entry: a redelivery of this very entry (its consumer died, or this
  consumer restarted): take it over and deliver;
* a record for another entry: a duplicate published by a producer retry: ack this copy, skip
  (the first copy is done, or still in progress and then retried or dead-lettered).

Verdicts: 1 deliver, 0 skipped as a duplicate.
"""

from __future__ import annotations

_CLAIM = """
local group, consumer, prefix, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local nbands = #KEYS - 1
local counters = KEYS[#KEYS]

local function message_id(fields)
  for j = 1, #fields, 2 do
    if fields[j] == 'id' then return fields[j + 1] end
  end
  return nil
end

local function claim(stream, eid, mid)
  if not mid then return 1 end  -- not one of ours: delivered, the client dead-letters it
  local key = prefix .. mid
  local mine = stream .. '|' .. eid .. '|' .. consumer
  if redis.call('SET', key, mine, 'NX', 'EX', ttl) then return 1 end
  local cur = redis.call('GET', key)
  if cur == 'done' or cur == 'dead' then return 0 end
  local carrier = string.match(cur, '^(.*)|[^|]*$')
  if carrier == stream .. '|' .. eid then
    redis.call('SET', key, mine, 'EX', ttl)
    return 1
  end
  return 0
end
"""

#: Reads up to ARGV[5] new entries, highest band first. Returns a flat list of triples
#: {band, entries as XREADGROUP returned them, skipped entry positions (1-based)}: entries are
#: passed through untouched (no table per entry: the reply is most of the script's cost), and
#: duplicates are acked, counted and listed as skipped. Every delivery writes its claim (one
#: SET NX in the common case), so two copies of one message published by a producer retry are
#: never handed to two consumers, even when they are read at the same moment.
READ = (
    _CLAIM
    + """
local count = tonumber(ARGV[5])
local out = {}
local dups = 0
local tail = '|' .. consumer
for i = 1, nbands do
  if count <= 0 then break end
  local stream = KEYS[i]
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
    'STREAMS', stream, '>')
  if r then
    local entries = r[1][2]
    local head = stream .. '|'
    local skipped = {}
    for k = 1, #entries do
      local eid, fields = entries[k][1], entries[k][2]
      local mid
      if fields[1] == 'id' then mid = fields[2] else mid = message_id(fields) end
      if mid and not redis.call('SET', prefix .. mid, head .. eid .. tail, 'NX', 'EX', ttl) then
        if claim(stream, eid, mid) == 0 then
          redis.call('XACK', stream, group, eid)
          dups = dups + 1
          skipped[#skipped + 1] = k
        end
      end
    end
    out[#out + 1] = i
    out[#out + 1] = entries
    out[#out + 1] = skipped
    count = count - #entries + #skipped
  end
end
if dups > 0 then redis.call('HINCRBY', counters, 'duplicates', dups) end
return out
"""
)

#: Dedupe decisions for entries obtained another way (a blocking read, XCLAIM, XAUTOCLAIM).
#: ARGV[5..]: (band, entry id, message id or '') triples. Returns a verdict per triple.
CLAIM_CHECK = (
    _CLAIM
    + """
local out = {}
local dups = 0
for j = 5, #ARGV, 3 do
  local band, eid, mid = tonumber(ARGV[j]), ARGV[j + 1], ARGV[j + 2]
  if mid == '' then mid = nil end
  local verdict = claim(KEYS[band], eid, mid)
  if verdict == 0 then
    redis.call('XACK', KEYS[band], group, eid)
    dups = dups + 1
  end
  out[#out + 1] = verdict
end
if dups > 0 then redis.call('HINCRBY', counters, 'duplicates', dups) end
return out
"""
)

#: Moves entries to the dead-letter stream (KEYS[#KEYS - 1] is the dead stream, KEYS[#KEYS]
#: the counters): copy the fields with the reason, XACK, dedupe record -> 'dead'.
#: ARGV[5] dead stream cap, ARGV[6] time (s); ARGV[7..]: (band, entry id, message id,
#: attempts, reason) quintuples. Verdicts: 1 moved; 2 moved already (a retry: XACK only);
#: 0 another consumer holds the entry (left alone).
DEAD_LETTER = """
local group, consumer, prefix, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local dead, counters = KEYS[#KEYS - 1], KEYS[#KEYS]
local cap, now = ARGV[5], ARGV[6]
local out = {}
local moved = 0
for j = 7, #ARGV, 5 do
  local band, eid, mid, attempts, reason =
    tonumber(ARGV[j]), ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4]
  local stream = KEYS[band]
  local ok = 1
  if mid ~= '' then
    local key = prefix .. mid
    local cur = redis.call('GET', key)
    local mine = stream .. '|' .. eid .. '|' .. consumer
    if cur == 'dead' then
      ok = 2  -- dead-lettered already (a retry after a lost reply): just XACK
    elseif cur and cur ~= mine and cur ~= 'done' then
      ok = 0
    end
    if ok == 1 then redis.call('SET', key, 'dead', 'EX', ttl) end
  end
  if ok == 2 then
    redis.call('XACK', stream, group, eid)
  elseif ok == 1 then
    local fields = {}
    local found = redis.call('XRANGE', stream, eid, eid)
    if found[1] then fields = found[1][2] end
    local args = {'XADD', dead, 'MAXLEN', '~', cap, '*'}
    for _, v in ipairs(fields) do args[#args + 1] = v end
    for _, v in ipairs({'reason', reason, 'attempts', attempts, 'stream', stream,
                        'entry', eid, 'dead_at', now}) do
      args[#args + 1] = v
    end
    redis.call(unpack(args))
    redis.call('XACK', stream, group, eid)
    moved = moved + 1
  end
  out[#out + 1] = ok
end
if moved > 0 then redis.call('HINCRBY', counters, 'dead_lettered', moved) end
return out
"""

#: Publishes a batch unless the destination's backlog would exceed ARGV[1] (-1: no limit).
#: KEYS: band streams (highest first) + counters. ARGV[2..]: (band, id, head, payload)
#: quadruples. Returns {n} on success or {-1, backlog} when full (nothing written).
PUBLISH = """
local limit = tonumber(ARGV[1])
local nbands = #KEYS - 1
local n = (#ARGV - 1) / 4
if limit >= 0 then
  local backlog = 0
  for i = 1, nbands do backlog = backlog + redis.call('XLEN', KEYS[i]) end
  if backlog + n > limit then return {-1, backlog} end
end
for j = 2, #ARGV, 4 do
  redis.call('XADD', KEYS[tonumber(ARGV[j])], '*',
    'id', ARGV[j + 1], 'h', ARGV[j + 2], 'p', ARGV[j + 3])
end
redis.call('HINCRBY', KEYS[#KEYS], 'published', n)
return {n}
"""

#: Trims one stream below the oldest entry any group still needs: the smallest pending id,
#: or, when nothing is pending, the group's last-delivered id (entries after it are not yet
#: delivered). With no group nothing is trimmed (nobody's progress is known).
TRIM = """
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok or #groups == 0 then return 0 end
local minid = nil
for _, g in ipairs(groups) do
  local name, pending, last
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1]
    elseif g[j] == 'pending' then pending = g[j + 1]
    elseif g[j] == 'last-delivered-id' then last = g[j + 1] end
  end
  local keep = last
  if pending and pending > 0 then
    local p = redis.call('XPENDING', KEYS[1], name)
    if p[2] and older(p[2], keep) then keep = p[2] end
  end
  if minid == nil or older(keep, minid) then minid = keep end
end
if minid == nil or minid == '0-0' then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', minid)
"""

"""Leases and fenced writes: exactly one publisher writes a stream at a time.

A lease is a Redis key ``{stream}:lease`` whose value names its holder (``host:pid:nonce``),
taken with ``SET NX PX`` and renewed by its holder well before it expires. Every write is
*fenced*: the Lua script that appends entries first checks that the lease still holds
the writer's token, in the same atomic step as the XADDs, so a holder that lost its lease
(paused process, partition) cannot write one more entry after a standby took over.

For trade feeds the same script keeps ``{stream}:seq`` (the last trade id written) and
skips entries whose id is not above it: the stream holds every trade at most once, in id
order, whoever writes it.
"""

from __future__ import annotations

__all__ = ["ACQUIRE_OR_RENEW", "FENCED_APPEND", "FENCED_APPEND_MANY", "RELEASE"]

#: KEYS: lease. ARGV: token, ttl ms.
#: Returns 1 when renewed (already ours), 2 when newly acquired, 0 when held by another.
ACQUIRE_OR_RENEW = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

#: KEYS: lease. ARGV: token. Deletes the lease only if it is ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: The body shared by both write scripts: ``append(stream, lease, seq, token, ttl,
#: maxlen, monotonic, after, batch)`` returns what :data:`FENCED_APPEND` returns.
_APPEND_FUNCTION = """
local function append(stream, lease, seqkey, token, ttl, maxlen, monotonic_flag, after, batch)
  local current = redis.call('GET', lease)
  if current == false then
    redis.call('SET', lease, token, 'PX', ttl)
  elseif current ~= token then
    return -1
  end
  local monotonic = monotonic_flag == '1'
  local last = nil
  local last_text = nil
  if monotonic then
    last_text = redis.call('GET', seqkey)
    if last_text then last = tonumber(last_text) end
    if after ~= '' and (last == nil or last < tonumber(after)) then return -2 end
  end
  local values = {}
  local count = 0
  if batch ~= '' then
    local find, sub = string.find, string.sub
    local pos = 1
    while true do
      local stop = find(batch, '\\n', pos, true)
      count = count + 1
      if stop == nil then
        values[count] = sub(batch, pos)
        break
      end
      values[count] = sub(batch, pos, stop - 1)
      pos = stop + 1
    end
  end
  if count % 4 ~= 0 then
    return redis.error_reply('FENCED_APPEND: batch of ' .. count .. ' values, not type/seq/data/ts')
  end
  local written = 0
  for i = 1, count, 4 do
    local seq = values[i + 1]
    local n = nil
    if monotonic and seq ~= '' then n = tonumber(seq) end
    if n == nil or last == nil or n > last then
      redis.call('XADD', stream, '*',
        'type', values[i], 'v', '1', 'seq', seq, 'data', values[i + 2], 'ts', values[i + 3])
      written = written + 1
      if n ~= nil then
        last = n
        last_text = seq
      end
    end
  end
  -- trimmed once per batch, not per entry: nobody sees the stream between the XADDs
  if written > 0 then redis.call('XTRIM', stream, 'MAXLEN', '~', maxlen) end
  if monotonic and last_text then redis.call('SET', seqkey, last_text) end
  return written
end
"""

#: KEYS: stream, lease, seq. ARGV: token, ttl ms, maxlen, monotonic ('1'/'0'), after,
#: batch. ``batch`` is every entry's ``type``, ``seq``, ``data`` and ``ts`` joined by
#: newlines (:func:`rxconnector.bus.codec.pack_batch`): one argument per batch instead of
#: four per entry, which the client would otherwise encode one by one.
#: The lease must be ours, or free (it lapsed and nobody took it: we take it back in the
#: same step); otherwise nothing is written and -1 is returned. ``after`` (monotonic
#: feeds, may be '') is the last id of the batch sent before this one in the same
#: pipeline: if that batch was not written, neither is this one (-2), so a failed batch
#: can never be skipped over. A batch whose value count is not a multiple of four is
#: refused whole (an error, nothing written). Returns the number of entries appended
#: (monotonic feeds skip ids at or below the last one written).
FENCED_APPEND = (
    _APPEND_FUNCTION
    + """
return append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
"""
)

#: :data:`FENCED_APPEND` for several batches (of one or more streams) in one call: the
#: publisher's small batches of many streams cost one script call per round trip
#: instead of one per stream. KEYS: stream, lease, seq of each batch in turn. ARGV: ttl
#: ms, maxlen, then token, monotonic, after, batch of each batch in turn. Returns one
#: answer per batch, in order, each what :data:`FENCED_APPEND` returns for it (an error
#: answer for a malformed batch, the others still written).
FENCED_APPEND_MANY = (
    _APPEND_FUNCTION
    + """
local answers = {}
for b = 1, #KEYS / 3 do
  local k, a = (b - 1) * 3, 2 + (b - 1) * 4
  answers[b] = append(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a + 1], ARGV[1], ARGV[2],
    ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
end
return answers
"""
)

//! The Lua scripts the Redis engine runs: each is one atomic step on one channel's keys,
//! so nodes publishing to the same channel at once still get contiguous offsets, and a
//! history read sees the position and the publications of one instant.
//!
//! Keys of a channel (`P` is `redis_prefix`; the braces are a Cluster hash tag, so they
//! and the live feed `P:{CH}:l` share a slot): `P:{CH}:m` the meta hash (`e` epoch, `s` top offset), `P:{CH}:s` the
//! stream (entry id `OFFSET-0`, fields `d` data, `i` publisher info, `t` time in ms),
//! `P:{CH}:i:KEY` an idempotency key (`"OFFSET EPOCH"`), `P:{CH}:p` presence (client to
//! info) and `P:{CH}:z` presence expiry (client to ms).

/// Publishes: idempotency check, epoch on first use (a lost meta key means a new epoch
/// and the old stream is dropped), the next offset, `XADD` capped at the history size,
/// the history TTL on stream and meta, then `PUBLISH` (`SPUBLISH` in a Cluster: the
/// live channel shares the keys' slot) of `OFFSET\nEPOCH\nINFO\nDATA` to the live
/// channel. Returns `{offset, epoch}`.
///
/// KEYS: meta, stream and, when the publish has one, its idempotency key (every key
/// of a script must be in one Cluster slot, so there is no placeholder).
/// ARGV: data, info (`""`: none), time ms, history size, history TTL ms, a new epoch,
/// live channel, idempotency TTL s, the publish command.
pub const PUBLISH: &str = r"
local meta, stream, idem = KEYS[1], KEYS[2], KEYS[3]
if idem then
  local seen = redis.call('GET', idem)
  if seen then
    local space = string.find(seen, ' ', 1, true)
    return {tonumber(string.sub(seen, 1, space - 1)), string.sub(seen, space + 1)}
  end
end
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 's', 0)
end
local offset = redis.call('HINCRBY', meta, 's', 1)
redis.call('XADD', stream, 'MAXLEN', ARGV[4], offset .. '-0', 'd', ARGV[1], 'i', ARGV[2], 't', ARGV[3])
redis.call('PEXPIRE', stream, ARGV[5])
redis.call('PEXPIRE', meta, ARGV[5])
redis.call(ARGV[9], ARGV[7], offset .. '\n' .. epoch .. '\n' .. ARGV[2] .. '\n' .. ARGV[1])
if idem then
  redis.call('SET', idem, offset .. ' ' .. epoch, 'EX', ARGV[8])
end
return {offset, epoch}
";

/// Reads history: creates the stream's epoch when there is none (it then expires after
/// the history TTL unless published to), and returns `{epoch, top, oldest, entries}`
/// where entries are `XRANGE`/`XREVRANGE` replies.
///
/// KEYS: meta, stream.
/// ARGV: a new epoch, history TTL ms, since (decimal text; `-1`: none), limit (`-1`:
/// all), reverse (`1`).
pub const HISTORY: &str = r"
local meta, stream = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 's', 0)
  redis.call('PEXPIRE', meta, ARGV[2])
end
local top = tonumber(redis.call('HGET', meta, 's'))
local oldest = 0
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
if #first > 0 then
  oldest = tonumber(string.match(first[1][1], '^(%d+)'))
end
local since, limit = ARGV[3], tonumber(ARGV[4])
local entries = {}
-- Newest first before offset 0: nothing (and XREVRANGE refuses the bound).
if ARGV[5] == '1' and since == '0' then limit = 0 end
if limit ~= 0 then
  local bound = '+'
  if ARGV[5] ~= '1' then bound = '-' end
  if since ~= '-1' then bound = '(' .. since .. '-0' end
  local args
  if ARGV[5] == '1' then
    args = {'XREVRANGE', stream, bound, '-'}
  else
    args = {'XRANGE', stream, bound, '+'}
  end
  if limit > 0 then
    args[#args + 1] = 'COUNT'
    args[#args + 1] = limit
  end
  entries = redis.call(unpack(args))
end
return {epoch, top, oldest, entries}
";

/// Removes a channel's publications and keeps its position.
///
/// KEYS: meta, stream.
pub const REMOVE_HISTORY: &str = r"
redis.call('DEL', KEYS[2])
return 1
";

/// Adds or refreshes presence entries (and the nodes' info, kept the same way): `HSET` of the info and the expiry time in the
/// sorted set; both keys live as long as their newest entry.
///
/// KEYS: presence hash, expiry set. ARGV: client, info, expires at ms, key TTL s.
pub const ADD_PRESENCE: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
";

/// Drops expired presence entries, then returns the rest as `HGETALL` does.
///
/// KEYS: presence hash, expiry set. ARGV: now ms.
pub const PRESENCE: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, client in ipairs(expired) do
  redis.call('HDEL', KEYS[1], client)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return redis.call('HGETALL', KEYS[1])
";

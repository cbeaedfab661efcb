//! The Lua scripts. Each touches keys of one hash tag only (see `docs/redis.md`), and treats
//! every number it compares as an integer below 2^53 (microsecond timestamps and counters).

use std::sync::LazyLock;

use deadpool_redis::redis::Script;

/// KEYS[1] record, KEYS[2] the key's audit log. ARGV: event member, then field, value, field,
/// value, … Writes the record and its event unless the record exists. Returns 1 when written,
/// 0 for a duplicate id.
pub(crate) static CREATE_RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
",
    )
});

/// KEYS[1] the event's marker, KEYS[2] the key's audit log. ARGV: event member, the marker's
/// lifetime (s). Adds a notice to the key's log unless its marker says it is there already.
/// Returns 1 when added, 0 when it was there.
pub(crate) static APPEND_EVENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
",
    )
});

/// KEYS[1] owner index, KEYS[2] owner live set. ARGV: index member, key id, now (µs),
/// max (-1 for none), expiry score. Counts the owner's live keys (not revoked, expiry > now),
/// refuses at the maximum, else indexes the key. Returns 1 when indexed, 0 at the limit.
pub(crate) static CLAIM_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local max = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if max >= 0 and redis.call('ZCARD', KEYS[2]) >= max then return 0 end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
return 1
",
    )
});

/// KEYS[1] owner index, KEYS[2] owner live set. ARGV: now (µs), max (-1 = none), then per key
/// its index member, key id and expiry score. CLAIM_SLOT for several keys of one owner: all of
/// them, or none when they would take the owner over `max`. Returns 1, or 0 when refused.
pub(crate) static CLAIM_SLOTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local max = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local n = (#ARGV - 2) / 3
if max >= 0 and redis.call('ZCARD', KEYS[2]) + n > max then return 0 end
for i = 3, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], 0, ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i + 1])
end
return 1
",
    )
});

/// KEYS[1] record, KEYS[2] the key's audit log. ARGV: management JSON, new updated_at,
/// expected updated_at, event member. Writes (with the event) only when the key is not revoked
/// and its `u` is still the expected one (the version check). Returns `{owner, written}`
/// (`written` 1 or 0), or nil when there is no such key.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local owner = redis.call('HGET', KEYS[1], 'o')
if redis.call('HEXISTS', KEYS[1], 'r') == 1 or redis.call('HGET', KEYS[1], 'u') ~= ARGV[3] then
  return {owner, 0}
end
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'u', ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[4])
return {owner, 1}
",
    )
});

/// KEYS[1] record, KEYS[2] the key's audit log. ARGV: digest, event member. Returns 1, or 0
/// when there is no such key.
pub(crate) static SET_DIGEST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return 1
",
    )
});

/// KEYS[1] record, KEYS[2] the key's audit log. ARGV: revoked_at (µs), expected `u` ('' for
/// any), event member. Sets `r` (and `u`) the first time only, and only while `u` is the
/// expected one, and then records the event; returns `{revoked, hash}`: whether this call
/// revoked, and the hash afterwards (empty when there is no such key).
pub(crate) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, {}} end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'u') ~= ARGV[2] then
  return {0, redis.call('HGETALL', KEYS[1])}
end
local revoked = 0
if redis.call('HSETNX', KEYS[1], 'r', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'u', ARGV[1])
  redis.call('ZADD', KEYS[2], 0, ARGV[3])
  revoked = 1
end
return {revoked, redis.call('HGETALL', KEYS[1])}
",
    )
});

/// KEYS[1] record. ARGV: requests to add, last_used (µs or ''), credit period or '', credits
/// used, where the last use came from (JSON or ''). Applies one usage delta by `keyward_core::memory::apply_usage`'s rule.
pub(crate) const RECORD_USAGE_SRC: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local add = tonumber(ARGV[1])
if add > 0 then redis.call('HINCRBY', KEYS[1], 'n', ARGV[1]) end
if ARGV[2] ~= '' then
  local old = tonumber(redis.call('HGET', KEYS[1], 'l') or '')
  if old == nil or old < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], 'l', ARGV[2])
    if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'lf', ARGV[5]) else redis.call('HDEL', KEYS[1], 'lf') end
  end
end
if ARGV[3] ~= '' then
  local p, u = tonumber(ARGV[3]), tonumber(ARGV[4])
  local op = tonumber(redis.call('HGET', KEYS[1], 'cp') or '0') or 0
  local ou = tonumber(redis.call('HGET', KEYS[1], 'cu') or '0') or 0
  if p > op or (p == op and u > ou) then redis.call('HSET', KEYS[1], 'cp', ARGV[3], 'cu', ARGV[4]) end
end
return 1
";

/// The usage script as a [`Script`] (for its hash).
pub(crate) static RECORD_USAGE: LazyLock<Script> = LazyLock::new(|| Script::new(RECORD_USAGE_SRC));

/// KEYS[1] rate state. ARGV: now (µs), period (µs), emission interval (µs), tokens wanted.
/// GCRA as `keyward_core::memory::gcra`, granting up to the tokens wanted at once: as many
/// requests as it would admit back to back now. Returns `{granted, 0}`, or `{0, wait_us}` when
/// it would admit none.
pub(crate) static LEASE_GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now, period, emission = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat == nil or tat < now then tat = now end
local room = math.floor((now + period - tat) / emission)
if room < 1 then return {0, tat - period + emission - now} end
local granted = math.min(want, room)
local new = tat + granted * emission
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.floor((new - now) / 1000) + 1000)
return {granted, 0}
",
    )
});

/// KEYS[1] credit counter. ARGV: period now, limit, stored period, stored used, ttl (s), credits
/// wanted, credits needed. Seeds from the record's stored usage, resets on a new period, grants
/// up to the credits wanted of what is left, and none when fewer than the credits needed are
/// left. Returns `{granted, period, used}`.
pub(crate) static LEASE_CREDITS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local period, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local sp, su = tonumber(ARGV[3]), tonumber(ARGV[4])
local want, need = tonumber(ARGV[6]), tonumber(ARGV[7])
local p = tonumber(redis.call('HGET', KEYS[1], 'p') or '')
local u = tonumber(redis.call('HGET', KEYS[1], 'u') or '')
if p == nil or u == nil or sp > p or (sp == p and su > u) then p, u = sp, su end
if p < period then p, u = period, 0 end
if limit - u < need then return {0, string.format('%d', p), string.format('%d', u)} end
local granted = math.min(want, limit - u)
u = u + granted
redis.call('HSET', KEYS[1], 'p', string.format('%d', p), 'u', string.format('%d', u))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {granted, string.format('%d', p), string.format('%d', u)}
",
    )
});

/// KEYS[1] failure counter. ARGV: window (ms). Counts one failure, opening the window on the
/// first; returns `{failures, ms left}`.
pub(crate) static ADD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
",
    )
});

/// KEYS[1] failure counter. Returns `{failures, ms left}`, or nil when no window is open.
pub(crate) static FAILURES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('GET', KEYS[1])
if not n then return nil end
return {tonumber(n), redis.call('PTTL', KEYS[1])}
",
    )
});

/// KEYS[1] a namespace's (a key's) seen nonces, a sorted set scored by expiry (ms, Redis's own
/// clock: `TIME` before writes needs effect replication, the default from Redis 5, asked for
/// where older servers have it). Numbers go to commands as integer text, never in Lua's
/// number format. ARGV: nonce, ttl (ms, an integer), most live nonces. Forgets the expired, then returns 0 for a
/// replay, -1 when the namespace holds its most (review: a key holder could fill Redis with
/// nonces), else records the nonce and returns 1.
pub(crate) static CHECK_NONCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
",
    )
});

/**
 * Lua scripts: each runs atomically in Redis, so two instances confirming or ending calls of one
 * extension at the same moment cannot lose a count (no read-modify-write between them).
 * KEYS and ARGV are documented per script; the keys are named in redis-state.ts (keys()).
 */

/**
 * Lua: add `by` to the count of each extension of a stored call, once per extension; a count
 * that reaches 0 goes.
 */
const COUNT = `
local function count(json, by)
  local seen = {}
  for _, p in ipairs(cjson.decode(json).parties) do
    local ext = p.extension
    if not seen[ext] then
      seen[ext] = true
      if redis.call('HINCRBY', KEYS_BUSY, ext, by) <= 0 then redis.call('HDEL', KEYS_BUSY, ext) end
    end
  end
end
`;

/** The script with COUNT defined first, counting in the busy hash KEYS[busy]. */
const withCount = (busy: number, body: string) => `local KEYS_BUSY = KEYS[${busy}]${COUNT}${body}`;

/**
 * A call confirmed. KEYS: calls hash, owner's call set, busy hash, changes channel.
 * ARGV: call id, call JSON, owner, the message to publish up to the call JSON (which the script
 * appends, so the record crosses the socket once), then each extension once.
 * Returns 1 when counted, 0 when the call was known already (a retransmitted write).
 */
export const CALL_UP = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
for i = 5, #ARGV do redis.call('HINCRBY', KEYS[3], ARGV[i], 1) end
redis.call('PUBLISH', KEYS[4], ARGV[4] .. ARGV[2] .. ']')
return 1`;

/**
 * A call ended. KEYS: calls hash, owner's call set, busy hash, changes channel.
 * ARGV: call id, message to publish. The extensions come from the stored call, so whoever ends
 * it (its owner, or the reaper of a dead owner) uncounts exactly what was counted, once.
 */
export const CALL_DOWN = withCount(
  3,
  `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
count(json, -1)
redis.call('PUBLISH', KEYS[4], ARGV[2])
return 1`,
);

/**
 * An instance whose lease ran out: its calls are uncounted, once, by whichever instance gets
 * there first. Its bindings stay for the instance to take up again when it restarts (the others
 * ignore them while it is dead), and expire with the longest registration. KEYS: instances zset,
 * instance address hash, its call set, calls hash, busy hash, its bindings hash, changes
 * channel. ARGV: instance, now (ms), message to publish, how long its bindings may live (ms).
 * Returns the number of calls uncounted, or -1 when the lease was renewed meanwhile (the
 * instance is alive after all).
 */
export const REAP = withCount(
  5,
  `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) > tonumber(ARGV[2]) then return -1 end
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local json = redis.call('HGET', KEYS[4], id)
  if json then
    redis.call('HDEL', KEYS[4], id)
    count(json, -1)
    n = n + 1
  end
end
redis.call('DEL', KEYS[3])
redis.call('PEXPIRE', KEYS[6], ARGV[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', KEYS[7], ARGV[3])
return n`,
);

/**
 * After Redis was unreachable (or this instance was reaped meanwhile): make Redis hold exactly
 * this instance's calls. KEYS: calls hash, own call set, busy hash. ARGV: pairs of call id and
 * call JSON. Calls Redis has for us but we no longer do are uncounted; ours it lacks are added
 * and counted. Returns the number of changes.
 */
export const SYNC_OWN_CALLS = withCount(
  3,
  `
local want = {}
for i = 1, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
local changes = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not want[id] then
    local json = redis.call('HGET', KEYS[1], id)
    if json then redis.call('HDEL', KEYS[1], id); count(json, -1) end
    redis.call('SREM', KEYS[2], id)
    changes = changes + 1
  end
end
for id, json in pairs(want) do
  if redis.call('HSETNX', KEYS[1], id, json) == 1 then
    redis.call('SADD', KEYS[2], id)
    count(json, 1)
    changes = changes + 1
  end
end
return changes`,
);

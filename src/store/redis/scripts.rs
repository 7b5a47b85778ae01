//! The Lua scripts of the Redis store: each check and its write happen in
//! one step on the server, so no other run can act between them.

use std::sync::LazyLock;

use redis::Script;

/// The stored generation and fence (`-1` for a value that is not a store,
/// or whose numbers Lua cannot hold exactly: whole, from 0 to 2^53).
const READ_STORED: &str = r"
local function whole(v)
  return type(v) == 'number' and v >= 0 and v < 9007199254740992 and v == math.floor(v)
end
local function stored(key)
  local current = redis.call('GET', key)
  if not current then return 0, 0 end
  local ok, decoded = pcall(cjson.decode, current)
  if not ok or type(decoded) ~= 'table' then return -1, 0 end
  local generation, fence = decoded.generation, decoded.fence or 0
  if not whole(generation) or not whole(fence) then return -1, 0 end
  return generation, fence
end
";

/// Takes the lease when free and returns the new fence; 0 when taken, -1
/// when the set is not a store, -2 when the lease key never expires (not
/// one of ours), -3 when the counter is not a usable number. The counter is
/// kept above the stored fence (a key copied without its counter), or
/// every save would be refused as stale.
pub(super) static TAKE: LazyLock<Script> = LazyLock::new(|| {
    with_stored(
        r"
local generation, stored_fence = stored(KEYS[3])
if generation == -1 then return -1 end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if not counter or counter < 0 or counter >= 9007199254740991 then return -3 end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('PTTL', KEYS[1]) == -1 then return -2 end
  return 0
end
local fence = redis.call('INCR', KEYS[2])
if fence <= stored_fence then
  fence = stored_fence + 1
  redis.call('SET', KEYS[2], fence)
end
return fence",
    )
});

/// Extends the lease only while it is ours.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0",
    )
});

/// Deletes the lease only while it is ours.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0",
    )
});

/// Marks the request in flight, and renews the lease for the call, only
/// while the lease is ours, no newer fence saved, and the set is the one
/// assessed.
pub(super) static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    with_stored(
        r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'lease' end
local generation, fence = stored(KEYS[1])
if fence > tonumber(ARGV[5]) then return 'fence' end
if generation ~= tonumber(ARGV[2]) then return 'generation' end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 'ok'",
    )
});

/// The fenced compare-and-set (see the module doc). Saving the very value
/// already stored is this save repeated after a lost reply: done.
pub(super) static SAVE: LazyLock<Script> = LazyLock::new(|| {
    with_stored(
        r"
if redis.call('GET', KEYS[1]) == ARGV[4] then return 'ok' end
local generation, fence = stored(KEYS[1])
if generation == -1 then return 'corrupt' end
if fence > tonumber(ARGV[2]) then return 'fence' end
if ARGV[5] == '1' then
  local mark = redis.call('GET', KEYS[3])
  if mark and not string.find(mark, ARGV[1], 1, true) then return 'overtaken' end
elseif redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 'lease'
end
if generation ~= tonumber(ARGV[3]) then return 'generation' end
redis.call('SET', KEYS[1], ARGV[4])
if ARGV[6] == '1' then redis.call('SET', KEYS[4], '1') end
if ARGV[7] ~= '' then redis.call('SADD', KEYS[5], ARGV[7]) end
return 'ok'",
    )
});

/// Clears the in-flight mark: any mark while the lease is ours (a dead
/// run's included), else only our own.
pub(super) static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local mark = redis.call('GET', KEYS[2])
if not mark then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] or string.find(mark, ARGV[1], 1, true) then
  return redis.call('DEL', KEYS[2])
end
return 0",
    )
});

fn with_stored(body: &str) -> Script {
    Script::new(&format!("{READ_STORED}{body}"))
}

/// Counts one request in a window of the upstream budget (`KEYS[1]`, which
/// outlives its minute by `ARGV[2]` seconds): 1 when within `ARGV[1]`, 0
/// when the window's requests are spent. The count and its expiry are set
/// in one step, so a key can never be left without one.
pub(super) static TAKE_BUDGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then return 0 end
return 1",
    )
});

/// Takes one unit of a reader's share (`KEYS[1]`), a token bucket kept as
/// the time its next unit is due (GCRA, in microseconds of Redis' own
/// clock, so hosts whose clocks differ count alike): `ARGV[1]` is the time
/// one unit takes to come back, `ARGV[2]` the share's period. 0 when taken,
/// else the microseconds until a unit is there. Written with `%.0f`: Lua
/// would print the time as `1.7e+15`, losing its last digits.
pub(super) static TAKE_SHARE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- A write after TIME needs effects replication before Redis 5 (the
-- default since; the call is then a no-op).
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local due = now
local stored = redis.call('GET', KEYS[1])
if stored then due = math.max(tonumber(stored), now) end
local wait = due + interval - now - period
if wait > 0 then return math.ceil(wait) end
local next_due = due + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_due), 'PX', math.ceil((next_due - now) / 1000) + 1)
return 0",
    )
});

/// Deletes an account's keys (`KEYS[1..5]`: the set, lease, fence, journal,
/// held mark), its event record `KEYS[7]` and its name `ARGV[1]` from the
/// index `KEYS[6]`, at once.
pub(super) static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[7])
redis.call('SREM', KEYS[6], ARGV[1])
return 0
",
    )
});

/// Replaces the event record `KEYS[1]` with `ARGV[3]` when it still is
/// `ARGV[2]` (`ARGV[1]` is `1`) or still absent (`ARGV[1]` is `0`): 1 when
/// replaced, 0 when another run changed it first.
pub(super) static SWAP_EVENTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
",
    )
});

// SPDX-License-Identifier: MIT
#include "tether/server/redis_functions.h"

namespace tether::server {
namespace {

// Lua 5.1 inside Redis: numbers are doubles, exact below 2^53 (kMaxSeq), but
// `..` and tostring() print them with 14 significant digits, so every number
// written back goes through dec() ("%.0f"). HGET of a missing field is false.
// Errors are raised as {err = ...} tables so the caller gets the message as
// an error reply; a function that raised has written nothing before the
// check that raised (every check comes before the first write).
constexpr std::string_view kLibrary = R"lua(#!lua name=tether
local MAX_SEQ = 9007199254740991
local MAX_VERSION = 4294967295

local function raise(message)
  error({err = message})
end

local function dec(n)
  return string.format('%.0f', n)
end

local function num(value, default)
  if value == false or value == nil then
    return default
  end
  local n = tonumber(value)
  if n == nil then
    raise('ERR tether: stored value is not a number')
  end
  return n
end

local function arg_number(args, i, name, max)
  local n = tonumber(args[i])
  if n == nil or n < 0 or n > max or n ~= math.floor(n) then
    raise('ERR tether: bad ' .. name)
  end
  return n
end

local function session_keys(keys)
  local state = keys[1]
  if state == nil or keys[2] ~= nil then
    raise('ERR tether: exactly one key, P:{S}:state')
  end
  local prefix, session = string.match(state, '^(.*):{([^}]+)}:state$')
  if prefix == nil then
    raise('ERR tether: the key must be P:{S}:state')
  end
  local base = prefix .. ':{' .. session .. '}:'
  return {state = state, up = base .. 'up', gaps = base .. 'gaps', down = base .. 'down',
          desired = base .. 'desired', prefix = prefix, session = session}
end

local function id_seq(id)
  return tonumber(string.match(id, '^(%d+)-'))
end

local function state_of(k)
  return redis.call('HGETALL', k.state)
end

-- The fence: every accepted hello takes the next epoch, and a write carries
-- the epoch of the hello its connection made. A write from any other epoch
-- comes from a connection that was superseded (by a newer version, or by the
-- same version reconnecting through another instance) and changes nothing;
-- the answer is the version now current, else nil.
local function fence(k, epoch)
  local h = redis.call('HMGET', k.state, 'epoch', 'version')
  if h[2] == false then
    raise('NOTFOUND tether: unknown session')
  end
  if num(h[1], 0) ~= epoch then
    return num(h[2], 0)
  end
  return nil
end

local function add_gap(k, first, last, reason)
  redis.call('XADD', k.gaps, dec(first) .. '-0', 'first', dec(first), 'last', dec(last),
             'reason', reason)
  redis.call('HINCRBY', k.state, 'gap_count', 1)
  redis.call('HINCRBY', k.state, 'missing_seqs', dec(last - first + 1))
  if reason == 'unreported' then
    redis.call('HINCRBY', k.state, 'unreported_gaps', 1)
  end
end

local function hello(keys, args)
  local k = session_keys(keys)
  local version = arg_number(args, 1, 'version', MAX_VERSION)
  local device = args[2]
  local last_down = arg_number(args, 3, 'last_downlink', MAX_SEQ)
  local oldest = arg_number(args, 4, 'oldest_uplink', MAX_SEQ)
  local user = args[5] or ''
  local instance = args[6] or ''
  if version < 1 or device == nil or device == '' then
    raise('ERR tether: bad hello')
  end
  local h = redis.call('HMGET', k.state, 'version', 'owner', 'next_expected', 'downlink_last')
  local resumed = redis.call('EXISTS', k.state) == 1
  local owner = h[2] or ''
  if resumed and owner ~= '' and owner ~= user then
    return {'forbidden', 1, 0, 0, 0, 0, 0, last_down, {}}
  end
  local ne = num(h[3], 1)
  if version < num(h[1], 0) then
    return {'superseded', 1, ne - 1, 0, 0, 0, 0, last_down, state_of(k)}
  end
  if not resumed then
    redis.call('HSET', k.state, 'next_expected', '1', 'received', '0', 'duplicates', '0',
               'gap_count', '0', 'missing_seqs', '0', 'unreported_gaps', '0',
               'trimmed_through', '0', 'highest_seq', '0', 'downlink_last', '0',
               'downlink_acked', '0')
  end
  redis.call('HSET', k.state, 'version', dec(version), 'device', device, 'instance', instance)
  local epoch = redis.call('HINCRBY', k.state, 'epoch', 1)
  if owner == '' then
    redis.call('HSET', k.state, 'owner', user)
  end
  local recorded = 0
  if oldest > ne then
    add_gap(k, ne, oldest - 1, 'not_in_outbox')
    ne = oldest
    redis.call('HSET', k.state, 'next_expected', dec(ne))
    recorded = 1
  end
  local last_assigned = num(h[4], 0)
  if last_down >= last_assigned + 1 then
    -- The device has seen seqs the store does not remember: number new
    -- messages above them so none is taken for a duplicate.
    last_assigned = last_down
    redis.call('HSET', k.state, 'downlink_last', dec(last_assigned))
  end
  local oldest_held = last_assigned + 1
  local first = redis.call('XRANGE', k.down, '-', '+', 'COUNT', 1)
  if #first > 0 then
    oldest_held = id_seq(first[1][1])
  end
  local has_gap, gap_first, gap_last, replay_after = 0, 0, 0, last_down
  if last_down + 1 < oldest_held then
    has_gap, gap_first, gap_last, replay_after = 1, last_down + 1, oldest_held - 1, oldest_held - 1
  end
  redis.call('PUBLISH', k.prefix .. ':supersede',
             k.session .. ' ' .. dec(version) .. ' ' .. instance .. ' ' .. dec(epoch))
  return {'accepted', resumed and 1 or 0, ne - 1, recorded, has_gap, gap_first, gap_last,
          replay_after, state_of(k)}
end

local function uplink(keys, args)
  local k = session_keys(keys)
  local epoch = arg_number(args, 1, 'epoch', MAX_SEQ)
  local maxlen = arg_number(args, 2, 'maxlen', MAX_SEQ)
  if (#args - 2) % 4 ~= 0 then
    raise('ERR tether: uplink takes groups of seq received_ms captured_ms payload')
  end
  for i = 3, #args, 4 do
    if arg_number(args, i, 'seq', MAX_SEQ) == 0 then
      raise('ERR tether: bad seq')
    end
  end
  local newer = fence(k, epoch)
  if newer then
    return {'superseded', newer}
  end
  local h = redis.call('HMGET', k.state, 'next_expected', 'device')
  local ne = num(h[1], 1)
  local device = h[2] or ''
  local stored, duplicates, gaps, missing, highest = 0, 0, 0, 0, nil
  for i = 3, #args, 4 do
    local seq = tonumber(args[i])
    if seq < ne then
      duplicates = duplicates + 1
    else
      if seq > ne then
        add_gap(k, ne, seq - 1, 'unreported')
        gaps = gaps + 1
        missing = missing + (seq - ne)
      end
      local id = dec(seq) .. '-0'
      if args[i + 2] == '' then
        redis.call('XADD', k.up, id, 'seq', dec(seq), 'device', device, 'session', k.session,
                   'received_ms', args[i + 1], 'payload', args[i + 3])
      else
        redis.call('XADD', k.up, id, 'seq', dec(seq), 'device', device, 'session', k.session,
                   'received_ms', args[i + 1], 'captured_ms', args[i + 2], 'payload', args[i + 3])
      end
      ne = seq + 1
      stored = stored + 1
      highest = seq
    end
  end
  redis.call('HSET', k.state, 'next_expected', dec(ne))
  if highest then
    redis.call('HSET', k.state, 'highest_seq', dec(highest))
    redis.call('HINCRBY', k.state, 'received', stored)
  end
  if duplicates > 0 then
    redis.call('HINCRBY', k.state, 'duplicates', duplicates)
  end
  if maxlen > 0 and stored > 0 then
    -- Retention, never silent: the highest seq removed is trimmed_through.
    local excess = redis.call('XLEN', k.up) - maxlen
    if excess > 0 then
      local oldest = redis.call('XRANGE', k.up, '-', '+', 'COUNT', excess)
      local through = id_seq(oldest[#oldest][1])
      redis.call('XTRIM', k.up, 'MINID', dec(through + 1))
      redis.call('HSET', k.state, 'trimmed_through', dec(through))
    end
  end
  return {'ok', ne - 1, stored, duplicates, gaps, missing, state_of(k)}
end

local function gap(keys, args)
  local k = session_keys(keys)
  local epoch = arg_number(args, 1, 'epoch', MAX_SEQ)
  local first = arg_number(args, 2, 'first', MAX_SEQ)
  local last = arg_number(args, 3, 'last', MAX_SEQ)
  local reason = args[4] or ''
  if first < 1 or last < first or #reason > 64 then
    raise('ERR tether: bad gap')
  end
  local newer = fence(k, epoch)
  if newer then
    return {'superseded', newer}
  end
  local ne = num(redis.call('HGET', k.state, 'next_expected'), 1)
  if last < ne then
    return {'ignored', ne - 1, 0, 0, state_of(k)}
  end
  local outcome, gaps, missing = 'recorded', 1, 0
  if first > ne then
    add_gap(k, ne, first - 1, 'unreported')
    outcome, gaps, missing = 'recorded_after_unreported_gap', 2, first - ne
    ne = first
  end
  add_gap(k, ne, last, reason)
  missing = missing + (last - ne + 1)
  ne = last + 1
  redis.call('HSET', k.state, 'next_expected', dec(ne))
  return {outcome, ne - 1, gaps, missing, state_of(k)}
end

local function ack_downlink(keys, args)
  local k = session_keys(keys)
  local epoch = arg_number(args, 1, 'epoch', MAX_SEQ)
  local seq = arg_number(args, 2, 'seq', MAX_SEQ)
  local newer = fence(k, epoch)
  if newer then
    return {'superseded', newer}
  end
  local h = redis.call('HMGET', k.state, 'downlink_last', 'downlink_acked')
  local last_assigned = num(h[1], 0)
  local acked = num(h[2], 0)
  if seq > last_assigned then
    return {'invalid', last_assigned}
  end
  if seq > acked then
    acked = seq
    redis.call('HSET', k.state, 'downlink_acked', dec(acked))
    redis.call('XTRIM', k.down, 'MINID', dec(acked + 1))
  end
  return {'ok', acked, state_of(k)}
end

local function push(keys, args)
  local k = session_keys(keys)
  local payload = args[1]
  local now = arg_number(args, 2, 'now_ms', MAX_SEQ)
  local capacity = 1024
  if args[3] ~= nil then
    capacity = arg_number(args, 3, 'capacity', MAX_SEQ)
  end
  if payload == nil or capacity < 1 then
    raise('ERR tether: push takes payload now_ms [capacity]')
  end
  local last_assigned = redis.call('HGET', k.state, 'downlink_last')
  if last_assigned == false then
    raise('NOTFOUND tether: unknown session')
  end
  local seq = num(last_assigned, 0) + 1
  if seq > MAX_SEQ then
    raise('ERR tether: downlink seqs exhausted')
  end
  redis.call('XADD', k.down, dec(seq) .. '-0', 'payload', payload, 'queued_ms', dec(now))
  redis.call('HSET', k.state, 'downlink_last', dec(seq))
  -- Older messages leave the replay buffer: a device that never took them
  -- gets an "expired" gap at its next hello.
  redis.call('XTRIM', k.down, 'MAXLEN', dec(capacity))
  redis.call('PUBLISH', k.prefix .. ':downlink', k.session)
  return seq
end

-- Device state (PROTOCOL.md section 9). The engine merges documents in C++
-- (Lua's cjson turns [] into {} and rounds large numbers), so these functions
-- never parse JSON: they compare versions and store the texts they are given,
-- a compare-and-set on the version the caller read.
local function desired_put(keys, args)
  local k = session_keys(keys)
  local base = arg_number(args, 1, 'base', MAX_SEQ - 1)
  local document = args[2]
  local patch = args[3]
  local history = arg_number(args, 4, 'history', MAX_SEQ)
  if document == nil or patch == nil or history < 1 then
    raise('ERR tether: desired_put takes base document patch history')
  end
  local h = redis.call('HMGET', k.state, 'version', 'desired_version')
  if h[1] == false then
    raise('NOTFOUND tether: unknown session')
  end
  local current = num(h[2], 0)
  if current ~= base then
    return {'conflict', current}
  end
  local version = base + 1
  local last = redis.call('XREVRANGE', k.desired, '+', '-', 'COUNT', 1)
  if #last > 0 and id_seq(last[1][1]) >= version then
    -- Increments at or above the new version belong to another history (the
    -- hash was restored from an older copy): they are no increments of this one.
    redis.call('DEL', k.desired)
  end
  redis.call('XADD', k.desired, 'MAXLEN', dec(history), dec(version) .. '-0', 'patch', patch)
  redis.call('HSET', k.state, 'desired_version', dec(version), 'desired', document)
  redis.call('PUBLISH', k.prefix .. ':desired', k.session .. ' ' .. dec(version))
  return {'ok', version}
end

local function desired_applied(keys, args)
  local k = session_keys(keys)
  local epoch = arg_number(args, 1, 'epoch', MAX_SEQ)
  local version = arg_number(args, 2, 'version', MAX_SEQ)
  local newer = fence(k, epoch)
  if newer then
    return {'superseded', newer}
  end
  local h = redis.call('HMGET', k.state, 'desired_version', 'desired_applied')
  local current = num(h[1], 0)
  local applied = num(h[2], 0)
  if version > current then
    return {'invalid', current}
  end
  if version > applied then
    applied = version
    redis.call('HSET', k.state, 'desired_applied', dec(applied))
  end
  return {'ok', applied}
end

local function report(keys, args)
  local k = session_keys(keys)
  local epoch = arg_number(args, 1, 'epoch', MAX_SEQ)
  local base = arg_number(args, 2, 'base', MAX_SEQ - 1)
  local id = args[3]
  local document = args[4]
  if id == nil or #id ~= 16 or string.match(id, '^[0-9a-f]+$') == nil or document == nil then
    raise('ERR tether: report takes epoch base id document')
  end
  local newer = fence(k, epoch)
  if newer then
    return {'superseded', newer}
  end
  local h = redis.call('HMGET', k.state, 'reported_version', 'reported', 'report_id')
  local current = num(h[1], 0)
  if h[3] == id then
    return {'repeated', current}
  end
  if current ~= base then
    return {'stale', current, h[2] or '{}'}
  end
  redis.call('HSET', k.state, 'reported_version', dec(base + 1), 'reported', document,
             'report_id', id)
  return {'ok', base + 1}
end

redis.register_function('tether_hello', hello)
redis.register_function('tether_uplink', uplink)
redis.register_function('tether_gap', gap)
redis.register_function('tether_ack_downlink', ack_downlink)
redis.register_function('tether_push', push)
redis.register_function('tether_desired_put', desired_put)
redis.register_function('tether_desired_applied', desired_applied)
redis.register_function('tether_report', report)
)lua";

}  // namespace

std::string_view redis_function_library() {
    return kLibrary;
}

}  // namespace tether::server

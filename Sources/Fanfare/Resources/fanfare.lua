#!lua name=__PREFIX__

-- Fanfare's function library for the key prefix __PREFIX__ (one library per prefix).
-- A node fills in the placeholders (prefix and history policy) and loads it with
-- FUNCTION LOAD; see Bus/RedisFunctions.swift and docs/ARCHITECTURE.md.
--
-- Every channel has its own history, a stream keyed __PREFIX__:h:{<channel>}; the channel is
-- the key's hash tag, so a publish touches one Redis Cluster slot. Entries hold the SSE body
-- (field b) and the position of the channel's entry before them (field p), which lets
-- readers tell a gap from a quiet channel. A final event (the end of a run) also holds
-- field f = 1: while it is the channel's newest entry, the channel is finished and refuses
-- publishes.

local VERSION = 7
local PREFIX = '__PREFIX__'
local MAXLEN = __MAXLEN__
local MAX_AGE_MS = __MAX_AGE_MS__
local IDLE_MS = __IDLE_MS__
local IDEMPOTENCY_MS = __IDEMPOTENCY_MS__
-- PUBLISH on one server; SPUBLISH (sharded, to the slot's primary only) in a Redis Cluster.
local PUBLISH = '__PUBLISH__'
-- The registry's keys share one hash tag, so they live in one slot of a cluster.
local REGISTRY = PREFIX .. ':{registry}:node:'
local NODES = PREFIX .. ':{registry}:nodes'
-- Channels whose names start with __ are the nodes' own (the delivery probe): they keep a
-- short history that expires soon after its node stops.
local NODE_MAXLEN = 16
local NODE_IDLE_MS = 60000
-- The most entries and bytes one history read answers.
local READ_MAX_COUNT = 1000
local READ_MAX_BYTES = 8388608
local POLICY = 'maxlen=' .. MAXLEN .. ' age_ms=' .. MAX_AGE_MS .. ' idle_ms=' .. IDLE_MS
  .. ' idempotency_ms=' .. IDEMPOTENCY_MS

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function valid_channel(c)
  return c ~= nil and #c >= 1 and #c <= 128 and string.match(c, '^[%w_%.:@%-]+$') ~= nil
end

-- The channel of a history key, or nil when the key is not one of this prefix's.
local function channel_of(key)
  local head = PREFIX .. ':h:{'
  if string.sub(key, 1, #head) ~= head or string.sub(key, -1) ~= '}' then return nil end
  local channel = string.sub(key, #head + 1, -2)
  if not valid_channel(channel) then return nil end
  return channel
end

-- '<ms>-<seq>' as two numbers, or nil.
local function parse_id(id)
  local ms, seq = string.match(id or '', '^(%d+)%-(%d+)$')
  if not ms or #ms > 15 or #seq > 15 then return nil end
  return tonumber(ms), tonumber(seq)
end

local function compare(a, b)
  local ams, aseq = parse_id(a)
  local bms, bseq = parse_id(b)
  if ams ~= bms then return ams < bms and -1 or 1 end
  if aseq ~= bseq then return aseq < bseq and -1 or 1 end
  return 0
end

-- Whether a history entry {id, {field, value, ...}} is a run's final event.
local function is_final(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'f' then return true end
  end
  return false
end

-- The last position of a history stream that trimming emptied, or 0-0 for none.
local function last_id_of_empty(key)
  if redis.call('EXISTS', key) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end

-- The newest position of a history stream, even when trimming emptied it, and whether its
-- newest entry is final (nothing trims it: trimming happens only when a publish comes).
local function last_entry(key)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if last[1] then return last[1][1], is_final(last[1]) end
  return last_id_of_empty(key), false
end

local function last_id(key)
  return (last_entry(key))
end

local function encode_body(event, data)
  if not string.find(data, '[\r\n]') then
    -- One line of data (every compact JSON payload): no splitting.
    if event == '' then return 'data: ' .. data .. '\n\n' end
    return 'event: ' .. event .. '\ndata: ' .. data .. '\n\n'
  end
  local parts = {}
  if event ~= '' then parts[#parts + 1] = 'event: ' .. event .. '\n' end
  data = (string.gsub(data, '\r\n', '\n'))
  data = (string.gsub(data, '\r', '\n'))
  for line in string.gmatch(data .. '\n', '([^\n]*)\n') do
    parts[#parts + 1] = 'data: ' .. line .. '\n'
  end
  parts[#parts + 1] = '\n'
  return table.concat(parts)
end

local function check_event(event)
  if #event > 128 or string.find(event, '[\r\n%z]') then
    return 'ERR fanfare: the event name must be at most 128 bytes without CR, LF or NUL'
  end
  if string.sub(event, 1, 2) == '__' then
    return 'ERR fanfare: event names starting with __ are reserved'
  end
  return nil
end

-- Appends one event after `predecessor` and publishes it; returns its position and the
-- number of nodes reached.
local function is_node_channel(channel)
  return string.sub(channel, 1, 2) == '__'
end

-- A final event carries field f and its message ' f' after the predecessor.
local function append(key, pubsub, predecessor, event, data, maxlen, final)
  local body = encode_body(event, data)
  local id, mark
  if final then
    id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'p', predecessor, 'b', body, 'f', '1')
    mark = ' f\n'
  else
    id = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'p', predecessor, 'b', body)
    mark = '\n'
  end
  local nodes = redis.call(PUBLISH, pubsub, id .. ' ' .. predecessor .. mark .. body)
  return id, nodes
end

local FINISHED = 'ERR fanfare: finished: the channel ended with a final event; publish on another channel'

-- A client's, a user's and everyone's channel never end: only other channels take a final event.
local function may_end(channel)
  return channel ~= 'broadcast' and string.sub(channel, 1, 7) ~= 'client:' and string.sub(channel, 1, 5) ~= 'user:'
    and not is_node_channel(channel)
end
-- Presence channels are the nodes' to publish on (joins and leaves), not a service's.
local function is_presence_channel(channel)
  return string.sub(channel, 1, 9) == 'presence:'
end
local PRESENCE_IS_NODES = 'ERR fanfare: presence: channels carry the nodes\' joins and leaves; publish elsewhere'
local NEVER_ENDS = 'ERR fanfare: client:, user:, broadcast and node channels never end; only other channels take final'

-- The optional last argument that makes a publish final: true for 'final', nil for none,
-- false for anything else.
local function final_flag(value)
  if value == nil then return nil end
  if value == 'final' then return true end
  return false
end

-- Trims by age and renews the idle expiry once the events are in, `id` being the last.
local function settle(key, id, idle_ms)
  if MAX_AGE_MS > 0 then
    -- The new id's milliseconds are the server's clock (or the last id's, if that was
    -- later): no TIME call. Trimming by age once per millisecond of a channel is enough.
    local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
    if seq == '0' then
      redis.call('XTRIM', key, 'MINID', (tonumber(ms) - MAX_AGE_MS) .. '-0')
    end
  end
  redis.call('PEXPIRE', key, idle_ms)
end

local function limits_of(channel)
  if is_node_channel(channel) then return NODE_MAXLEN, NODE_IDLE_MS end
  return MAXLEN, IDLE_MS
end

local function bad_key_reply()
  return redis.error_reply('ERR fanfare: the key must be ' .. PREFIX .. ':h:{<channel>} with a valid channel name')
end

-- Whether the keys are the registry's for node `id`: the node list, then its row and its
-- counts (`with_counts`), so a caller cannot point a registry function at other keys.
local function registry_keys(keys, id, with_counts)
  if keys[1] ~= NODES then return false end
  if id == nil then return #keys == 1 end
  if #id < 1 or #id > 128 or string.find(id, '[%c%s{}]') then return false end
  if keys[2] ~= REGISTRY .. id then return false end
  if with_counts and keys[3] ~= REGISTRY .. id .. ':counts' then return false end
  return true
end

local function bad_registry_reply()
  return redis.error_reply('ERR fanfare: the keys must be the registry\'s: ' .. NODES
    .. ' (and the node\'s row and counts)')
end

-- A whole number from an argument, within [low, high]; `default` when absent or not a number.
local function clamped(value, default, low, high)
  local n = tonumber(value)
  if not n or n ~= n then return default end
  n = math.floor(n)
  if n < low then return low end
  if n > high then return high end
  return n
end

-- FCALL <prefix>_publish 1 <prefix>:h:{<channel>} <event> <data> [final]
-- FCALL <prefix>_publish 2 <prefix>:h:{<channel>} <prefix>:i:{<channel>}:<key> <event> <data> [final]
-- Appends the event to the channel's history (its position is the entry id), publishes
-- '<position> <predecessor>\n<body>' on <prefix>:c:{<channel>}, and answers
-- {position, subscribed nodes, 0}; with an idempotency key seen within the window it
-- publishes nothing and answers {the first publish's position, 0, 1}. With `final` the
-- event ends the channel (a run): it is stored and published like any other, its message
-- says ' f' after the predecessor, and a later publish on the channel is refused
-- ('ERR fanfare: finished: ...') while its history lasts.
local function publish(keys, args)
  local channel = channel_of(keys[1])
  if not channel then return bad_key_reply() end
  local event, data = args[1] or '', args[2] or ''
  local bad = check_event(event)
  if bad then return redis.error_reply(bad) end
  local final = final_flag(args[3])
  if final == false or #args > 3 then
    return redis.error_reply('ERR fanfare: after the event and its data only the word final may follow')
  end
  if final and not may_end(channel) then return redis.error_reply(NEVER_ENDS) end
  if is_presence_channel(channel) then return redis.error_reply(PRESENCE_IS_NODES) end
  if keys[2] then
    local head = PREFIX .. ':i:{' .. channel .. '}:'
    if string.sub(keys[2], 1, #head) ~= head or #keys[2] == #head or #keys[2] > #head + 128 then
      return redis.error_reply('ERR fanfare: the idempotency key must be ' .. head .. '<key>')
    end
    local seen = redis.call('GET', keys[2])
    if seen then
      -- Written again as it is: a write that replicas must acknowledge after the first
      -- publish, so a WAIT that follows this retry covers the event it answers with.
      redis.call('SET', keys[2], seen, 'KEEPTTL')
      return {seen, 0, 1}
    end
  end
  local maxlen, idle_ms = limits_of(channel)
  local last, finished = last_entry(keys[1])
  if finished then return redis.error_reply(FINISHED) end
  local id, nodes = append(keys[1], PREFIX .. ':c:{' .. channel .. '}', last, event, data, maxlen, final)
  settle(keys[1], id, idle_ms)
  if keys[2] then redis.call('SET', keys[2], id, 'PX', IDEMPOTENCY_MS) end
  return {id, nodes, 0}
end

-- FCALL <prefix>_publish_batch 1 <prefix>:h:{<channel>} <event> <data> [<event> <data> ...] [final]
-- Several events of one channel in one call, in order, each as <prefix>_publish would
-- (without idempotency keys): answers {nodes reached, position, position, ...}. Every
-- event name is checked first: a bad one publishes none of them. A trailing `final`
-- makes the last event final; a finished channel refuses them all.
local function publish_batch(keys, args)
  local channel = channel_of(keys[1])
  if not channel then return bad_key_reply() end
  local count = #args
  local final = nil
  if count % 2 == 1 then
    final = final_flag(args[count])
    count = count - 1
  end
  if count == 0 or final == false then
    return redis.error_reply('ERR fanfare: give one or more pairs of event and data, then final if the last ends the channel')
  end
  if final and not may_end(channel) then return redis.error_reply(NEVER_ENDS) end
  if is_presence_channel(channel) then return redis.error_reply(PRESENCE_IS_NODES) end
  for i = 1, count, 2 do
    local bad = check_event(args[i])
    if bad then return redis.error_reply(bad) end
  end
  local pubsub = PREFIX .. ':c:{' .. channel .. '}'
  local predecessor, finished = last_entry(keys[1])
  if finished then return redis.error_reply(FINISHED) end
  local maxlen, idle_ms = limits_of(channel)
  local reply = {0}
  for i = 1, count, 2 do
    local id, nodes = append(keys[1], pubsub, predecessor, args[i], args[i + 1], maxlen, final and i == count - 1)
    reply[#reply + 1] = id
    reply[1] = nodes
    predecessor = id
  end
  settle(keys[1], predecessor, idle_ms)
  return reply
end

-- FCALL <prefix>_head 1 <prefix>:h:{<channel>}: the channel's newest position, 0-0 for none.
local function head(keys, args)
  if not channel_of(keys[1]) then return bad_key_reply() end
  return last_id(keys[1])
end

-- The body's size of a history entry {id, {field, value, ...}}.
local function entry_bytes(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'b' then return #fields[i + 1] end
  end
  return 0
end

-- FCALL <prefix>_read 1 <prefix>:h:{<channel>} <after> <count> [<max bytes>]
-- {status, head, entries, final}: status ok (entries follow <after> without a gap), trimmed
-- (entries after <after> left the history; entries are the first ones left), gone (the
-- history was lost or expired, and may have started over: entries are its first ones),
-- unknown (<after> is newer than the history or not a position). At most <count> entries
-- (1 to 1000), stopping before one that would take the bodies past <max bytes> (the first
-- always comes); the reader reads on while the last entry is older than the head. final is
-- 1 when the head is a final event (the channel is finished), else 0.
local function read(keys, args)
  if not channel_of(keys[1]) then return bad_key_reply() end
  local after = args[1]
  local count = clamped(args[2], 100, 1, READ_MAX_COUNT)
  local max_bytes = clamped(args[3], READ_MAX_BYTES, 1, READ_MAX_BYTES)
  if not parse_id(after) then return {'unknown', '0-0', {}, 0} end
  if redis.call('EXISTS', keys[1]) == 0 then
    if after == '0-0' then return {'ok', '0-0', {}, 0} end
    return {'gone', '0-0', {}, 0}
  end
  local newest, finished = last_entry(keys[1])
  local final = finished and 1 or 0
  local order = compare(after, newest)
  if order > 0 then return {'unknown', newest, {}, final} end
  if order == 0 then return {'ok', newest, {}, final} end
  local entries = redis.call('XRANGE', keys[1], '(' .. after, '+', 'COUNT', count)
  local bytes = 0
  for i = 1, #entries do
    bytes = bytes + entry_bytes(entries[i])
    if bytes > max_bytes and i > 1 then
      for j = #entries, i, -1 do entries[j] = nil end
      break
    end
  end
  local first = entries[1]
  local predecessor = nil
  if first then
    for i = 1, #first[2], 2 do
      if first[2][i] == 'p' then predecessor = first[2][i + 1] end
    end
  end
  if predecessor ~= after then
    -- Events after <after> are missing; what is left follows the first one's predecessor.
    -- A history that starts over from nothing after the position was lost, not trimmed.
    if predecessor == '0-0' then return {'gone', newest, entries, final} end
    return {'trimmed', newest, entries, final}
  end
  return {'ok', newest, entries, final}
end

-- FCALL <prefix>_disconnect 1 <prefix>:h:{<channel>} <request id> <reconnect 0|1> <reason>
-- Asks every node subscribed to the channel to end its streams there: publishes
-- '! <request id> <reconnect>\n<reason>' on <prefix>:c:{<channel>} (stored nowhere) and
-- answers how many nodes it reached. Each answers with <prefix>_disconnected.
local function disconnect(keys, args)
  local channel = channel_of(keys[1])
  if not channel then return bad_key_reply() end
  local id, reconnect, reason = args[1] or '', args[2] or '', args[3] or ''
  if not string.match(id, '^[%w]+$') or #id > 64 or (reconnect ~= '0' and reconnect ~= '1') then
    return redis.error_reply('ERR fanfare: give a request id (letters and digits), 0 or 1, and a reason')
  end
  return redis.call(PUBLISH, PREFIX .. ':c:{' .. channel .. '}', '! ' .. id .. ' ' .. reconnect .. '\n' .. reason)
end

-- The key of a disconnect request's answers, or nil when the key is not one.
local function answers_key(key)
  local head = PREFIX .. ':d:{'
  if string.sub(key or '', 1, #head) ~= head or string.sub(key, -1) ~= '}' then return nil end
  local id = string.sub(key, #head + 1, -2)
  if not string.match(id, '^[%w]+$') or #id > 64 then return nil end
  return key
end

-- FCALL <prefix>_disconnected 1 <prefix>:d:{<request id>} <streams closed>
-- A node's answer to a disconnect request; the answers expire after a minute.
local function disconnected(keys, args)
  if not answers_key(keys[1]) then
    return redis.error_reply('ERR fanfare: the key must be ' .. PREFIX .. ':d:{<request id>}')
  end
  local closed = clamped(args[1], 0, 0, 1000000000)
  redis.call('RPUSH', keys[1], closed)
  redis.call('PEXPIRE', keys[1], 60000)
  return closed
end

-- FCALL <prefix>_disconnects 1 <prefix>:d:{<request id>}: the answers so far, one count per node.
local function disconnects(keys, args)
  if not answers_key(keys[1]) then
    return redis.error_reply('ERR fanfare: the key must be ' .. PREFIX .. ':d:{<request id>}')
  end
  return redis.call('LRANGE', keys[1], 0, -1)
end

-- FCALL <prefix>_policy 0: {library version, history policy}.
local function policy(keys, args)
  return {VERSION, POLICY}
end

-- FCALL <prefix>_heartbeat 3 <nodes> <node row> <node counts> <id> <ttl ms> <info> <mode> [<channel> <count> ...]
local function heartbeat(keys, args)
  local id, ttl, info, replace = args[1], tonumber(args[2]), args[3], args[4]
  if not registry_keys(keys, id, true) or #keys ~= 3 then return bad_registry_reply() end
  if not ttl or ttl < 1 or ttl > 3600000 then
    return redis.error_reply('ERR fanfare: the ttl must be 1 to 3600000 milliseconds')
  end
  ttl = math.floor(ttl)
  local now = now_ms()
  redis.call('HSET', keys[2], 'info', info, 'seen', now)
  if replace == '1' then
    -- Every channel's count: they replace the node's counts.
    redis.call('DEL', keys[3])
    local i = 5
    while i <= #args do
      local last = math.min(i + 1999, #args)
      redis.call('HSET', keys[3], unpack(args, i, last))
      i = last + 1
    end
  elseif replace == '2' then
    -- The counts that changed; 0 removes the channel.
    local set, gone = {}, {}
    for i = 5, #args - 1, 2 do
      if args[i + 1] == '0' then
        gone[#gone + 1] = args[i]
      else
        set[#set + 1] = args[i]
        set[#set + 1] = args[i + 1]
      end
    end
    for i = 1, #set, 2000 do redis.call('HSET', keys[3], unpack(set, i, math.min(i + 1999, #set))) end
    for i = 1, #gone, 1000 do redis.call('HDEL', keys[3], unpack(gone, i, math.min(i + 999, #gone))) end
  end
  redis.call('PEXPIRE', keys[2], ttl)
  redis.call('PEXPIRE', keys[3], ttl)
  redis.call('ZADD', keys[1], now + ttl, id)
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now)
  return now
end

-- FCALL <prefix>_leave 3 <nodes> <node row> <node counts> <id>
local function leave(keys, args)
  if not registry_keys(keys, args[1], true) or #keys ~= 3 then return bad_registry_reply() end
  redis.call('ZREM', keys[1], args[1])
  redis.call('DEL', keys[2], keys[3])
  return 1
end

local function cluster(keys, args)
  if not registry_keys(keys, nil) then return bad_registry_reply() end
  local nodes = {}
  local clients = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', keys[1], now_ms(), '+inf')) do
    local info = redis.call('HGET', REGISTRY .. node, 'info')
    local seen = redis.call('HGET', REGISTRY .. node, 'seen')
    if info then
      nodes[#nodes + 1] = info
      nodes[#nodes + 1] = seen or '0'
      local counts = redis.call('HGETALL', REGISTRY .. node .. ':counts')
      for i = 1, #counts, 2 do
        if string.sub(counts[i], 1, 7) == 'client:' then
          local c = string.sub(counts[i], 8)
          clients[c] = (clients[c] or 0) + tonumber(counts[i + 1])
        end
      end
    end
  end
  local flat = {}
  for c, n in pairs(clients) do
    flat[#flat + 1] = c
    flat[#flat + 1] = n
  end
  return {nodes, flat}
end

local function client(keys, args)
  if not registry_keys(keys, nil) then return bad_registry_reply() end
  local id = args[1] or ''
  local result = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', keys[1], now_ms(), '+inf')) do
    local n = redis.call('HGET', REGISTRY .. node .. ':counts', 'client:' .. id)
    if n then
      result[#result + 1] = node
      result[#result + 1] = tonumber(n)
    end
  end
  return result
end

-- FCALL <prefix>_connections 1 <prefix>:{registry}:nodes <channel>: the channel's streams on every live node.
local function connections(keys, args)
  if not registry_keys(keys, nil) then return bad_registry_reply() end
  local total = 0
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', keys[1], now_ms(), '+inf')) do
    local n = redis.call('HGET', REGISTRY .. node .. ':counts', args[1])
    if n then total = total + tonumber(n) end
  end
  return total
end

-- Leases: a node's stream holds a place under a user's limit, or on a channel's presence,
-- by a lease it renews every few seconds; a node that dies stops renewing, and its leases
-- lapse. Scores are when a lease lapses (the server's clock, in milliseconds).

-- The user of a limit key __PREFIX__:u:{user:<id>}, or nil when the key is not one.
local function limit_user(key)
  local head = PREFIX .. ':u:{user:'
  if string.sub(key or '', 1, #head) ~= head or string.sub(key, -1) ~= '}' then return nil end
  local user = string.sub(key, #head + 1, -2)
  if not valid_channel('user:' .. user) then return nil end
  return user
end

local function valid_lease(lease)
  return lease ~= nil and #lease >= 1 and #lease <= 64 and string.match(lease, '^[%w]+$') ~= nil
end

-- A member of a limit set: '<opened, 15 digits> <lease>', so the oldest sorts first.
local function lease_of(member)
  return string.match(member, '^%d+ (%w+)$')
end

local LIMIT_USAGE = 'ERR fanfare: give the limit key ' .. PREFIX .. ':u:{user:<id>}, then a limit (1 or more), '
  .. 'refuse or oldest, a lease (letters and digits) and its lifetime in milliseconds'

-- FCALL <prefix>_user_acquire 1 <prefix>:u:{user:<id>} <limit> <refuse|oldest> <lease> <lease ms>
-- Takes a place for a stream of the user under `limit`, across the cluster: lapsed places
-- are dropped first. Over the limit, `refuse` answers {0}; `oldest` ends the user's oldest
-- streams (a disconnect request naming their lease, on the user's channel, so only the node
-- that holds each ends it) and answers {1, member, ended lease, ...}. Within the limit it
-- answers {1, member}: the member names the place for renewing and releasing it.
local function user_acquire(keys, args)
  local user = limit_user(keys[1])
  local limit, policy, lease, lifetime = tonumber(args[1]), args[2], args[3], tonumber(args[4])
  if not user or not limit or limit < 1 or (policy ~= 'refuse' and policy ~= 'oldest') or not valid_lease(lease)
    or not lifetime or lifetime < 1000 or lifetime > 3600000 then
    return redis.error_reply(LIMIT_USAGE)
  end
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now)
  local members = redis.call('ZRANGE', keys[1], 0, -1)
  local result = {1, ''}
  if #members >= limit then
    if policy == 'refuse' then return {0} end
    table.sort(members)
    local channel = PREFIX .. ':c:{user:' .. user .. '}'
    for i = 1, #members - limit + 1 do
      local old = lease_of(members[i])
      redis.call('ZREM', keys[1], members[i])
      if old then
        redis.call(PUBLISH, channel, '! ' .. old .. ' 0 ' .. old .. '\nconnection limit per user: a newer stream opened')
        result[#result + 1] = old
      end
    end
  end
  local member = string.format('%015d', now) .. ' ' .. lease
  redis.call('ZADD', keys[1], now + lifetime, member)
  redis.call('PEXPIRE', keys[1], lifetime * 2)
  result[2] = member
  return result
end

-- FCALL <prefix>_user_renew 1 <prefix>:u:{user:<id>} <lease ms> <limit> <member> ...
-- Renews this node's places of the user. A place that is gone (it lapsed while Redis was
-- away, or a newer stream took it) is taken again while the user is under `limit`; the
-- answer is the members that could not be: their streams must end.
local function user_renew(keys, args)
  local lifetime, limit = tonumber(args[1]), tonumber(args[2])
  if not limit_user(keys[1]) or not lifetime or lifetime < 1000 or lifetime > 3600000 or not limit
    or limit < 1 then
    return redis.error_reply(LIMIT_USAGE)
  end
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now)
  local gone = {}
  for i = 3, #args do
    if redis.call('ZSCORE', keys[1], args[i]) then
      redis.call('ZADD', keys[1], 'XX', now + lifetime, args[i])
    elseif redis.call('ZCARD', keys[1]) < limit and lease_of(args[i]) then
      redis.call('ZADD', keys[1], now + lifetime, args[i])
    else
      gone[#gone + 1] = args[i]
    end
  end
  if redis.call('EXISTS', keys[1]) == 1 then redis.call('PEXPIRE', keys[1], lifetime * 2) end
  return gone
end

-- FCALL <prefix>_user_release 1 <prefix>:u:{user:<id>} <member>: the stream closed.
local function user_release(keys, args)
  if not limit_user(keys[1]) then return redis.error_reply(LIMIT_USAGE) end
  return redis.call('ZREM', keys[1], args[1] or '')
end

-- FCALL <prefix>_user_places 1 <prefix>:u:{user:<id>}: the user's live places, oldest first.
local function user_places(keys, args)
  if not limit_user(keys[1]) then return redis.error_reply(LIMIT_USAGE) end
  local members = redis.call('ZRANGEBYSCORE', keys[1], now_ms(), '+inf')
  table.sort(members)
  return members
end

-- Presence of channel <c>: who has a stream on it, as leases '<user> <lease>' in
-- __PREFIX__:p:{presence:<c>} (scored by when they lapse) and streams per user in
-- __PREFIX__:q:{presence:<c>}; joins and leaves are events of the channel presence:<c>,
-- kept in its history __PREFIX__:h:{presence:<c>} like any other channel's.
local PRESENCE_USAGE = 'ERR fanfare: the keys must be ' .. PREFIX .. ':p:{presence:<channel>}, '
  .. PREFIX .. ':q:{presence:<channel>} and ' .. PREFIX .. ':h:{presence:<channel>}'

local function presence_channel(keys)
  local history = keys[3] or ''
  local channel = channel_of(history)
  if not channel or string.sub(channel, 1, 9) ~= 'presence:' or #channel == 9 then return nil end
  local tag = '{' .. channel .. '}'
  if keys[1] ~= PREFIX .. ':p:' .. tag or keys[2] ~= PREFIX .. ':q:' .. tag then return nil end
  return channel
end

-- A join or leave of `user`, stored and published on the presence channel.
local function presence_event(keys, channel, kind, user)
  local maxlen, idle_ms = limits_of(channel)
  local last = last_entry(keys[3])
  local data = '{"user":"' .. user .. '","channel":"' .. string.sub(channel, 10) .. '"}'
  local id = append(keys[3], PREFIX .. ':c:{' .. channel .. '}', last, kind, data, maxlen, false)
  settle(keys[3], id, idle_ms)
end

local function presence_add(keys, channel, member, user, expires)
  if redis.call('ZADD', keys[1], expires, member) == 1 then
    if redis.call('HINCRBY', keys[2], user, 1) == 1 then presence_event(keys, channel, 'join', user) end
  end
end

local function presence_remove(keys, channel, member)
  local user = string.match(member, '^(%S+) ')
  if not user or redis.call('ZREM', keys[1], member) == 0 then return end
  if redis.call('HINCRBY', keys[2], user, -1) <= 0 then
    redis.call('HDEL', keys[2], user)
    presence_event(keys, channel, 'leave', user)
  end
end

-- Lapsed leases leave (their node stopped renewing them: it died, or lost Redis).
local function presence_prune(keys, channel, now)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', keys[1], '-inf', now)) do
    presence_remove(keys, channel, member)
  end
end

local function presence_keep(keys, lifetime)
  if redis.call('EXISTS', keys[1]) == 1 then
    redis.call('PEXPIRE', keys[1], lifetime * 4)
    redis.call('PEXPIRE', keys[2], lifetime * 4)
  else
    redis.call('DEL', keys[2])
  end
end

-- FCALL <prefix>_presence_renew 3 <p key> <q key> <h key> <lease ms> <user> <lease> [<user> <lease> ...]
-- Enters or renews the leases of this node's streams on the channel: a user's first lease
-- anywhere publishes `join`. Answers the channel's users.
local function presence_renew(keys, args)
  local channel = presence_channel(keys)
  local lifetime = tonumber(args[1])
  if not channel or not lifetime or lifetime < 1000 or lifetime > 3600000 or #args % 2 ~= 1 then
    return redis.error_reply(PRESENCE_USAGE .. ', then a lease lifetime and user-lease pairs')
  end
  local now = now_ms()
  presence_prune(keys, channel, now)
  for i = 2, #args - 1, 2 do
    local user, lease = args[i], args[i + 1]
    if not valid_channel('user:' .. user) or not valid_lease(lease) then
      return redis.error_reply('ERR fanfare: a user id and a lease (letters and digits) in each pair')
    end
    presence_add(keys, channel, user .. ' ' .. lease, user, now + lifetime)
  end
  presence_keep(keys, lifetime)
  return redis.call('HLEN', keys[2])
end

-- FCALL <prefix>_presence_leave 3 <p key> <q key> <h key> <user> <lease> [...]: streams closed;
-- a user's last lease publishes `leave`.
local function presence_leave(keys, args)
  local channel = presence_channel(keys)
  if not channel or #args % 2 ~= 0 then return redis.error_reply(PRESENCE_USAGE .. ', then user-lease pairs') end
  for i = 1, #args - 1, 2 do presence_remove(keys, channel, args[i] .. ' ' .. args[i + 1]) end
  presence_prune(keys, channel, now_ms())
  return redis.call('HLEN', keys[2])
end

-- FCALL <prefix>_presence_sweep 3 <p key> <q key> <h key>: lapsed leases leave; answers the
-- leases left (0: the channel's presence is gone).
local function presence_sweep(keys, args)
  local channel = presence_channel(keys)
  if not channel then return redis.error_reply(PRESENCE_USAGE) end
  presence_prune(keys, channel, now_ms())
  if redis.call('ZCARD', keys[1]) == 0 then redis.call('DEL', keys[2]) end
  return redis.call('ZCARD', keys[1])
end

-- FCALL <prefix>_presence_users 3 <p key> <q key> <h key>: {user, streams, ...} now online.
local function presence_users(keys, args)
  if not presence_channel(keys) then return redis.error_reply(PRESENCE_USAGE) end
  local now = now_ms()
  local counts = {}
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', keys[1], now, '+inf')) do
    local user = string.match(member, '^(%S+) ')
    if user then counts[user] = (counts[user] or 0) + 1 end
  end
  local users = {}
  for user in pairs(counts) do users[#users + 1] = user end
  table.sort(users)
  local flat = {}
  for _, user in ipairs(users) do
    flat[#flat + 1] = user
    flat[#flat + 1] = counts[user]
  end
  return flat
end

-- The presence channels some node has streams on, in the registry's slot, and a lock that
-- lets one node at a time sweep them (a channel whose only node died has nobody renewing).
local PRESENCE_INDEX = PREFIX .. ':{registry}:presence'
local SWEEP_LOCK = PREFIX .. ':{registry}:presence-sweep'

-- FCALL <prefix>_presence_index 2 <index> <lock> <node> <interval ms> [<channel> ...]
-- Notes the node's presence channels; answers every indexed channel when this node may
-- sweep now (at most one node per interval), else {}.
local function presence_index(keys, args)
  local node, interval = args[1], tonumber(args[2])
  if keys[1] ~= PRESENCE_INDEX or keys[2] ~= SWEEP_LOCK or not node or #node < 1 or not interval
    or interval < 100 or interval > 3600000 then
    return redis.error_reply('ERR fanfare: the keys must be ' .. PRESENCE_INDEX .. ' and ' .. SWEEP_LOCK
      .. ', then a node id and an interval')
  end
  for i = 3, #args, 1000 do redis.call('SADD', keys[1], unpack(args, i, math.min(i + 999, #args))) end
  if not redis.call('SET', keys[2], node, 'NX', 'PX', interval) then return {} end
  return redis.call('SMEMBERS', keys[1])
end

-- FCALL <prefix>_presence_unindex 1 <index> <channel> ...: channels whose presence is gone.
local function presence_unindex(keys, args)
  if keys[1] ~= PRESENCE_INDEX or #args == 0 then
    return redis.error_reply('ERR fanfare: the key must be ' .. PRESENCE_INDEX .. ', then channels')
  end
  return redis.call('SREM', keys[1], unpack(args, 1, math.min(#args, 1000)))
end

redis.register_function(PREFIX .. '_publish', publish)
redis.register_function(PREFIX .. '_publish_batch', publish_batch)
redis.register_function{function_name = PREFIX .. '_head', callback = head, flags = {'no-writes'}}
redis.register_function{function_name = PREFIX .. '_read', callback = read, flags = {'no-writes'}}
redis.register_function(PREFIX .. '_disconnect', disconnect)
redis.register_function(PREFIX .. '_disconnected', disconnected)
redis.register_function{function_name = PREFIX .. '_disconnects', callback = disconnects, flags = {'no-writes'}}
redis.register_function{function_name = PREFIX .. '_policy', callback = policy, flags = {'no-writes'}}
redis.register_function(PREFIX .. '_heartbeat', heartbeat)
redis.register_function(PREFIX .. '_leave', leave)
redis.register_function{function_name = PREFIX .. '_cluster', callback = cluster, flags = {'no-writes'}}
redis.register_function{function_name = PREFIX .. '_client', callback = client, flags = {'no-writes'}}
redis.register_function{function_name = PREFIX .. '_connections', callback = connections, flags = {'no-writes'}}
redis.register_function(PREFIX .. '_user_acquire', user_acquire)
redis.register_function(PREFIX .. '_user_renew', user_renew)
redis.register_function(PREFIX .. '_user_release', user_release)
redis.register_function{function_name = PREFIX .. '_user_places', callback = user_places, flags = {'no-writes'}}
redis.register_function(PREFIX .. '_presence_renew', presence_renew)
redis.register_function(PREFIX .. '_presence_leave', presence_leave)
redis.register_function(PREFIX .. '_presence_sweep', presence_sweep)
redis.register_function{function_name = PREFIX .. '_presence_users', callback = presence_users, flags = {'no-writes'}}
redis.register_function(PREFIX .. '_presence_index', presence_index)
redis.register_function(PREFIX .. '_presence_unindex', presence_unindex)

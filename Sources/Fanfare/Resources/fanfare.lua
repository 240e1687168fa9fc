#!lua name=fanfare

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function valid_channel(c)
  return #c >= 1 and #c <= 128 and string.match(c, '^[%w_%.:@%-]+$') ~= nil
end

local function encode_body(event, data)
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

local function publish(keys, args)
  local channel, event, data = args[1], args[2] or '', args[3] or ''
  local maxlen = tonumber(args[4] or '10000') or 10000
  local prefix = args[5] or 'fanfare'
  local max_age_ms = tonumber(args[6] or '0') or 0
  if not channel or not valid_channel(channel) then
    return redis.error_reply('ERR fanfare: invalid channel name')
  end
  if string.find(event, '[\r\n%z]') then
    return redis.error_reply('ERR fanfare: event name contains CR, LF or NUL')
  end
  if string.sub(event, 1, 2) == '__' then
    return redis.error_reply('ERR fanfare: event names starting with __ are reserved')
  end
  local body = encode_body(event, data)
  local id = redis.call('XADD', keys[1], 'MAXLEN', '~', maxlen, '*', 'c', channel, 'b', body)
  if max_age_ms > 0 then
    redis.call('XTRIM', keys[1], 'MINID', (now_ms() - max_age_ms) .. '-0')
  end
  local frame = 'id: ' .. id .. '\n' .. body
  local nodes = redis.call('PUBLISH', prefix .. ':c:' .. channel, frame)
  local connections = 0
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', keys[2], now_ms(), '+inf')) do
    local n = redis.call('HGET', prefix .. ':node:' .. node .. ':counts', channel)
    if n then connections = connections + tonumber(n) end
  end
  return {id, nodes, connections}
end

local function heartbeat(keys, args)
  local id, ttl, info, replace = args[1], tonumber(args[2]), args[3], args[4]
  local now = now_ms()
  redis.call('HSET', keys[2], 'info', info, 'seen', now)
  if replace == '1' then
    redis.call('DEL', keys[3])
    local i = 5
    while i <= #args do
      local last = math.min(i + 1999, #args)
      redis.call('HSET', keys[3], unpack(args, i, last))
      i = last + 1
    end
  end
  redis.call('PEXPIRE', keys[2], ttl)
  redis.call('PEXPIRE', keys[3], ttl)
  redis.call('ZADD', keys[1], now + ttl, id)
  redis.call('ZREMRANGEBYSCORE', keys[1], '-inf', now)
  return now
end

local function leave(keys, args)
  redis.call('ZREM', keys[1], args[1])
  redis.call('DEL', keys[2], keys[3])
  return 1
end

local function cluster(keys, args)
  local prefix = args[1] or 'fanfare'
  local nodes = {}
  local clients = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', keys[1], now_ms(), '+inf')) do
    local info = redis.call('HGET', prefix .. ':node:' .. node, 'info')
    local seen = redis.call('HGET', prefix .. ':node:' .. node, 'seen')
    if info then
      nodes[#nodes + 1] = info
      nodes[#nodes + 1] = seen or '0'
      local counts = redis.call('HGETALL', prefix .. ':node:' .. node .. ':counts')
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
  local prefix, id = args[1] or 'fanfare', args[2]
  local result = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', keys[1], now_ms(), '+inf')) do
    local n = redis.call('HGET', prefix .. ':node:' .. node .. ':counts', 'client:' .. id)
    if n then
      result[#result + 1] = node
      result[#result + 1] = tonumber(n)
    end
  end
  return result
end

local function replay(keys, args)
  local first = redis.call('XRANGE', keys[1], '-', '+', 'COUNT', 1)
  local last = redis.call('XREVRANGE', keys[1], '+', '-', 'COUNT', 1)
  local oldest = first[1] and first[1][1] or ''
  local newest = last[1] and last[1][1] or ''
  local entries = redis.call('XRANGE', keys[1], '(' .. args[1], '+', 'COUNT', tonumber(args[2]))
  return {oldest, newest, entries}
end

redis.register_function('fanfare_publish', publish)
redis.register_function{function_name = 'fanfare_replay', callback = replay, flags = {'no-writes'}}
redis.register_function('fanfare_heartbeat', heartbeat)
redis.register_function('fanfare_leave', leave)
redis.register_function{function_name = 'fanfare_cluster', callback = cluster, flags = {'no-writes'}}
redis.register_function{function_name = 'fanfare_client', callback = client, flags = {'no-writes'}}

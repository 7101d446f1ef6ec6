-- A helper that builds the key: the concatenation happens in another function.
local rcall = redis.call
local function metaKey(base, name)
  return base .. ':' .. name
end
rcall('HSET', metaKey(KEYS[1], 'meta'), 'opts', ARGV[1])
return rcall('HGET', KEYS[1], 'opts')

-- Options decoded from a JSON argument name a key.
local opts = cjson.decode(ARGV[1])
local current = redis.call('GET', opts.counter)
return redis.call('SET', KEYS[1], current or 0)

-- A helper function and an ipairs loop, both fed only from KEYS.
local function touch(key, ttl)
  return redis.call('PEXPIRE', key, ttl)
end
local keys = KEYS
for _, k in ipairs(keys) do
  touch(k, ARGV[1])
end
return touch(KEYS[1], 1000)

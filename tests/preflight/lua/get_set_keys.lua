-- Copy a value between two declared keys.
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('SET', KEYS[2], value)
end
return value

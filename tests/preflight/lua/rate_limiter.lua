-- Fixed-window rate limiter: KEYS[1] is the window counter, ARGV[1] its TTL in seconds.
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return count

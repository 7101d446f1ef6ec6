-- Delete what a SCAN returns: the keys come from the reply, inside a loop.
local cursor = '0'
repeat
  local res = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 100)
  cursor = res[1]
  for _, k in ipairs(res[2]) do
    redis.call('UNLINK', k)
  end
until cursor == '0'
return true

-- Remove finished jobs: ids come from a sorted set, job keys are built per id in a loop.
local prefix = ARGV[1]
local limit = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[3], 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('DEL', prefix .. id)
  redis.call('DEL', prefix .. id .. ':logs')
end
redis.call('ZREM', KEYS[1], unpack(ids))
return #ids

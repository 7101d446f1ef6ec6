-- A uniqueness lock whose key name arrives as an argument, not in KEYS.
local digest = ARGV[1]
local job_id = ARGV[2]
local ttl = tonumber(ARGV[3])
local locked = redis.call('SET', digest, job_id, 'NX', 'EX', ttl)
if locked then
  redis.call('HSET', KEYS[1], digest, job_id)
end
return locked

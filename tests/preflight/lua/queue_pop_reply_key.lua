-- Pop a job id, then read the job's hash whose key is the popped value itself.
local key = redis.call('RPOPLPUSH', KEYS[1], KEYS[2])
if not key then
  return nil
end
return redis.call('HGETALL', key)

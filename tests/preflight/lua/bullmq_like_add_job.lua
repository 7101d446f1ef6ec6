--[[
  Add a job the way job queues do: the job's hash key is built inside the script
  from the queue prefix (KEYS[1]) and a job id taken from ARGV.
]]
local rcall = redis.call
local prefix = KEYS[1]
local jobId = ARGV[1]
local jobKey = prefix .. jobId
rcall('HSET', jobKey, 'name', ARGV[2], 'data', ARGV[3], 'timestamp', ARGV[4])
rcall('LPUSH', KEYS[2], jobId)
rcall('XADD', KEYS[3], '*', 'event', 'added', 'jobId', jobId)
return jobId

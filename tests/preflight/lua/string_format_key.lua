-- A lock key made with string.format.
local lock = string.format('lock:%s:%s', ARGV[1], ARGV[2])
return redis.call('SET', lock, ARGV[3], 'PX', 30000, 'NX')

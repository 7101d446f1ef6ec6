-- Read and move with every key spread from KEYS.
local values = redis.call('MGET', unpack(KEYS))
redis.pcall('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
server.call('EXISTS', KEYS[1], KEYS[2])
return values

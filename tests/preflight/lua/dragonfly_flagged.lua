--!df flags=allow-undeclared-keys,disable-atomicity
-- Undeclared keys, explicitly allowed on Dragonfly by the flag on the first line.
local key = 'session:' .. ARGV[1]
return redis.call('GET', key)

#!lua name=accounts
-- A Redis 7 function library: the callback's first parameter holds the declared keys.
local function balance(keys, args)
  return redis.call('GET', keys[1])
end

local function transfer(keys, args)
  redis.call('DECRBY', keys[1], args[2])
  redis.call('INCRBY', 'account:' .. args[1], args[2])
  return 'OK'
end

redis.register_function('balance', balance)
redis.register_function{function_name = 'transfer', callback = transfer}

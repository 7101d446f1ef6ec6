-- Counts calls in a global counter named in the script.
redis.call('INCR', KEYS[1])
return redis.call('INCR', 'stats:calls:total')

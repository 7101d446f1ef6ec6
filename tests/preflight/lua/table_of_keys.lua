-- Keys gathered into a table from KEYS, then spread into one call.
local targets = {}
for i = 2, #KEYS do
  table.insert(targets, KEYS[i])
end
targets[#targets + 1] = KEYS[1]
return redis.call('DEL', unpack(targets))

-- The least a booking must do in Redis (scripts/bench-redis-floor.sh): check the ban, the
-- person, the user's count, the seats and the code, then write seat, person, user, appointment,
-- the user's list, one notice and the no-show time. KEYS and ARGV as that script passes them.
local now = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') > now then return 'BANNED' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'ALREADY' end
if redis.call('SCARD', KEYS[3]) >= 3 then return 'TOO_MANY' end
if tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0') >= 1000000000 then return 'FULL' end
if not redis.call('SET', KEYS[5], ARGV[3], 'NX') then return 'CODE' end
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[6], 'status', 'booked', 'doc', ARGV[4])
redis.call('ZADD', KEYS[7], now, ARGV[3])
redis.call('HSET', KEYS[8], ARGV[3], ARGV[5])
redis.call('ZADD', KEYS[9], now, ARGV[3])
return 'OK'

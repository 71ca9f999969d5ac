-- GCRA over several keys in one atomic step: take (or return) tokens.
--
-- A key's value is its theoretical arrival time (TAT) and the bucket it was
-- written under: "<TAT unix seconds> <TAT nanoseconds> <capacity ns>". Time
-- is kept as a (seconds, nanoseconds) pair because Lua 5.1 numbers are
-- doubles: a Unix time in nanoseconds (~2^61) does not fit their 53-bit
-- mantissa, while a debt in nanoseconds (below 104 days) does, so every
-- difference below is exact to the nanosecond.
--
-- ARGV[1], ARGV[2]: now as Unix seconds and nanoseconds; ARGV[1] == ""
--   reads the server's clock (TIME) instead, so that every data plane
--   shares one clock.
-- ARGV[3]: "1" all-or-none (one request: every key grants its need or no
--   key is charged), "0" independent (lease refills and returns).
-- ARGV[4]: how long a key outlives its TAT, in milliseconds.
-- Then four values per key, from ARGV[5]:
--   iv    emission interval, ns (≥ 1)
--   cap   bucket capacity, ns (burst × iv); compared as text to detect a
--         changed limit
--   want  tokens to take if the bucket has them (≥ need); negative: give
--         back -want tokens taken earlier and never spent
--   need  tokens the bucket must have for the key to admit
--
-- Returns {ok, g1, d1, r1, g2, d2, r2, ...}: ok is 1 when every key granted
-- its need (always 1 in independent mode); gi the tokens granted to key i;
-- di the key's debt (time until its bucket is full, ns) after the call;
-- ri, when key i could not grant its need, the time until it can (else 0).
--
-- The arithmetic is the local limiter's (pkg/limits, params.decide):
--   debt = clamp(TAT − now, 0, cap), available = ⌊(cap − debt) / iv⌋,
--   a grant of g moves TAT to max(TAT, now) + g·iv.
-- A debt larger than the bucket is clamped, and the clamp stored, only when
-- the limit changed (another capacity is stored): an old clock reading from
-- a lagging data plane must not hand tokens back.

local now_s, now_n
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now_s, now_n = tonumber(t[1]), tonumber(t[2]) * 1000
else
  now_s, now_n = tonumber(ARGV[1]), tonumber(ARGV[2])
end
local all = ARGV[3] == '1'
local slack = tonumber(ARGV[4])

-- Per distinct key: the stored state, the state a refusal would leave
-- (clamps only) and the tentative state after this call's charges.
local keys = {}
local order = {}
local res = {1}
local pre = {}
local ok = true

for i = 1, #KEYS do
  local b = 1 + 4 * i
  local iv, cap, want, need = tonumber(ARGV[b]), ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local capn = tonumber(cap)
  local name = KEYS[i]
  local s = keys[name]
  if not s then
    s = {known = false, debt = 0, cap = cap, clamped = false}
    local v = redis.call('GET', name)
    if v then
      local ts, tn, c = string.match(v, '^(%d+) (%d+) (%d+)$')
      if ts then
        s.known, s.cap = true, c
        s.debt = (tonumber(ts) - now_s) * 1e9 + (tonumber(tn) - now_n)
      end
    end
    s.kdebt, s.kcap = s.debt, s.cap -- what a refusal writes
    keys[name] = s
    order[#order + 1] = name
  end
  if s.known and s.cap ~= cap and s.debt > capn then
    s.debt = capn
    if not s.charged then
      s.kdebt, s.kcap, s.clamped = capn, cap, true
    end
  end
  local debt = math.max(0, math.min(s.debt, capn))
  pre[i] = debt
  local g, r = 0, 0
  if want < 0 then
    if s.known then
      s.debt = s.debt + want * iv
      s.charged = true
    end
    debt = math.max(0, math.min(s.debt, capn))
  else
    local avail = math.floor((capn - debt) / iv)
    if avail >= need then
      g = math.min(want, avail)
      if g > 0 then
        s.debt = debt + g * iv
        s.charged = true
        debt = s.debt
      end
    else
      r = debt + need * iv - capn
      ok = false
    end
  end
  s.cap, s.known = cap, true
  res[3 * i - 1], res[3 * i], res[3 * i + 1] = g, debt, r
end

local function store(name, debt, cap)
  if debt <= 0 then
    redis.call('DEL', name)
    return
  end
  local tn = now_n + debt
  local ts = now_s + math.floor(tn / 1e9)
  tn = tn - math.floor(tn / 1e9) * 1e9
  redis.call('SET', name, string.format('%d %d %s', ts, tn, cap), 'PX', math.ceil(debt / 1e6) + slack)
end

if all and not ok then
  -- Nothing is charged; only clamps of changed limits stick. Every key
  -- reports its debt as it was decided on.
  res[1] = 0
  for i = 1, #KEYS do
    res[3 * i - 1], res[3 * i] = 0, pre[i]
  end
  for _, name in ipairs(order) do
    local s = keys[name]
    if s.clamped then
      store(name, s.kdebt, s.kcap)
    end
  end
else
  for _, name in ipairs(order) do
    local s = keys[name]
    if s.charged or s.clamped then
      store(name, s.debt, s.cap)
    end
  end
end
return res

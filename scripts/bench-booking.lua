-- wrk: POST /api/v1/appointments, each request a distinct applicant (valid GB 11643 number),
-- from the users whose tokens BENCH_TOKENS lists (one per line), in turn.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  tokens[#tokens + 1] = "Bearer " .. line
end
local slot = os.getenv("BENCH_SLOT")
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = {"1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"}
local threads = 0
local counter = 0
local base = 0

function setup(thread)
  -- BENCH_ID_BASE lets runs against the same store book applicants not booked before.
  thread:set("base", (tonumber(os.getenv("BENCH_ID_BASE")) or 0) + threads * 10000000)
  threads = threads + 1
end

local function id_number(n)
  -- 1000 sequence numbers per birth day, days from 1950-01-01.
  local birth = os.date("%Y%m%d", os.time({year = 1950, month = 1, day = 1 + math.floor(n / 1000), hour = 12}))
  local first17 = string.format("441900%s%03d", birth, n % 1000)
  local sum = 0
  for i = 1, 17 do
    sum = sum + tonumber(first17:sub(i, i)) * weights[i]
  end
  return first17 .. checks[(sum % 11) + 1]
end

function init(args)
  base = tonumber(wrk.thread:get("base")) or 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"slot_id":"%s","service":"expiry_renewal","applicant":{"name":"张三","id_number":"%s","phone":"13812345678"}}',
    slot, id_number(base + counter))
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = tokens[counter % #tokens + 1],
  }, body)
end

-- wsgi-baseline open-loop client: wrk sends GETs on a fixed schedule (wrk2's method)
-- and measures each response from the moment its request was due.
--
-- Load: wrk -t<N> -c<N> -s harness/bench/lua/openloop.lua URL   (one connection per
-- thread: wrk's Lua API has no connection identity, so a thread's schedule is its
-- connection's). Environment:
--   WSGI_BASELINE_RATE=5000      offered requests per second, all threads together
--   WSGI_BASELINE_CONNECTIONS=N  the -c (= -t) given to wrk, to share the rate out
--   WSGI_BASELINE_REPORT=FILE    where done() writes the JSON report (measured run)
--
-- Thread i sends request k when it is due, at t0 + ((i - 1) / N + k) * N / RATE: the
-- threads' schedules interleave, so together they offer RATE evenly spread. When a
-- response comes late the next request is already due and goes at once: the schedule
-- does not wait for the server (an open loop within the N connections). For each
-- response the report keeps two latencies, in ~1 % wide log buckets of microseconds:
--   corrected    from when the request was due, or from when it was sent if wrk's
--                millisecond timer sent it (up to 1 ms) early: what a user arriving on
--                the schedule waited, stalls included — coordinated omission corrected;
--   uncorrected  from when it was actually sent: what a closed-loop client reports.
-- and the send lag (sent minus due, 0 when early): how far behind its own schedule
-- the client or the server left the requests. wrk's stdout is untouched; its own
-- latency figures there are closed-loop figures from the actual send.

local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local reportlib = dofile(here .. "reportlib.lua")
local num, str = reportlib.num, reportlib.str

local ffi = require("ffi")
pcall(ffi.cdef, [[
  typedef struct { long tv_sec; long tv_nsec; } wsgi_baseline_ts;
  int clock_gettime(int clk_id, wsgi_baseline_ts *tp);
]])
local ts = ffi.new("wsgi_baseline_ts")
local CLOCK_MONOTONIC = 1
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local RATE = tonumber(os.getenv("WSGI_BASELINE_RATE") or "")
assert(RATE and RATE > 0, "WSGI_BASELINE_RATE: the offered rate (requests per second) is required")
local N = tonumber(os.getenv("WSGI_BASELINE_CONNECTIONS") or "")
assert(N and N >= 1, "WSGI_BASELINE_CONNECTIONS: the number of connections (= threads) is required")
local STEP = math.log(1.01) -- bucket width, as report.lua's histogram

-- main state: number the threads and give them one start time ------------------
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
  -- CLOCK_MONOTONIC is one clock for every thread: the schedules start together,
  -- a little after the last thread is set up.
  thread:set("t0", now_us() + 20000)
end

-- thread state ---------------------------------------------------------------
local interval, nxt, due_of, sent_at, verifying, req

local function bucket(v)
  if v < 1 then return -1 end
  return math.floor(math.log(v) / STEP)
end

function init(args)
  interval = 1e6 * N / RATE
  nxt = t0 + (id - 1) / N * interval
  req = wrk.format("GET", wrk.path)
  verifying = (id == 1) -- wrk calls request() once on the first thread to check it
  corrected, uncorrected, lag = {}, {}, {}
  sent, answered, early, status_other, s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0, 0, 0, 0, 0
  lag_max, corr_max, unc_max, corr_sum, unc_sum = 0, 0, 0, 0, 0
  first_due, last_answer = nxt, nxt
end

function delay()
  local wait = nxt - now_us()
  if wait <= 1000 then return 0 end
  return math.floor(wait / 1000) -- wakes up to 1 ms early; see `corrected` above
end

function request()
  if verifying then
    verifying = false
    return req
  end
  local t = now_us()
  due_of, sent_at = nxt, t
  nxt = nxt + interval
  sent = sent + 1
  local l = t - due_of
  if l < 0 then early = early + 1; l = 0 end
  local b = bucket(l)
  lag[b] = (lag[b] or 0) + 1
  if l > lag_max then lag_max = l end
  return req
end

function response(status, headers, body)
  if sent_at == nil then return end
  local t = now_us()
  local u = t - sent_at
  local from = due_of < sent_at and due_of or sent_at -- the earlier of due and sent
  local c = t - from
  local b = bucket(c)
  corrected[b] = (corrected[b] or 0) + 1
  b = bucket(u)
  uncorrected[b] = (uncorrected[b] or 0) + 1
  corr_sum, unc_sum = corr_sum + c, unc_sum + u
  if c > corr_max then corr_max = c end
  if u > unc_max then unc_max = u end
  answered = answered + 1
  last_answer = t
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status < 400 then s3xx = s3xx + 1
  elseif status < 500 then s4xx = s4xx + 1
  elseif status < 600 then s5xx = s5xx + 1
  else status_other = status_other + 1 end
  sent_at = nil
end

-- main state again: merge the threads' histograms and write the report ----------
local function merge(into, t)
  for k, n in pairs(t or {}) do into[k] = (into[k] or 0) + n end
end

-- [[lower, count], ...] in increasing order; lower bounds in whole microseconds.
local function histogram(h)
  local keys = {}
  for k in pairs(h) do table.insert(keys, k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local lower = 0
    if k >= 0 then lower = math.floor(math.exp(k * STEP) + 0.5) end
    table.insert(parts, string.format("[%d, %s]", lower, num(h[k])))
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

function done(summary, latency, requests)
  local path = os.getenv("WSGI_BASELINE_REPORT")
  if path == nil or path == "" then return end
  local corr, unc, lg = {}, {}, {}
  local tot = {sent = 0, answered = 0, early = 0, s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0,
    status_other = 0, corr_sum = 0, unc_sum = 0}
  local maxes = {lag_max = 0, corr_max = 0, unc_max = 0, last_answer = 0}
  local first = math.huge
  for _, t in ipairs(threads) do
    merge(corr, t:get("corrected"))
    merge(unc, t:get("uncorrected"))
    merge(lg, t:get("lag"))
    first = math.min(first, t:get("first_due") or math.huge)
    for name in pairs(tot) do tot[name] = tot[name] + (t:get(name) or 0) end
    for name in pairs(maxes) do
      local v = t:get(name) or 0
      if v > maxes[name] then maxes[name] = v end
    end
  end
  local e = summary.errors
  local mean = function(sum) return tot.answered > 0 and sum / tot.answered or 0 / 0 end
  local out = string.format(
    '{"kind": "open-loop", "script": "openloop.lua", "offered_rate": %s, "connections": %s, ' ..
    '"duration_us": %s, "requests": %s, "bytes": %s, "sent": %s, "answered": %s, ' ..
    '"sent_early": %s, "window_us": %s, ' ..
    '"errors": {"connect": %s, "read": %s, "write": %s, "status": %s, "timeout": %s}, ' ..
    '"status": {"2xx": %s, "3xx": %s, "4xx": %s, "5xx": %s, "other": %s}, ' ..
    '"corrected_us": {"mean": %s, "max": %s, "histogram": %s}, ' ..
    '"uncorrected_us": {"mean": %s, "max": %s, "histogram": %s}, ' ..
    '"send_lag_us": {"max": %s, "histogram": %s}, ' ..
    '"wrk_latency_us": {"mean": %s, "max": %s, "p99": %s}, "bucket_step": %s}\n',
    num(RATE), num(N), num(summary.duration), num(summary.requests), num(summary.bytes),
    num(tot.sent), num(tot.answered), num(tot.early), num(maxes.last_answer - first),
    num(e.connect), num(e.read), num(e.write), num(e.status), num(e.timeout),
    num(tot.s2xx), num(tot.s3xx), num(tot.s4xx), num(tot.s5xx), num(tot.status_other),
    num(mean(tot.corr_sum)), num(maxes.corr_max), histogram(corr),
    num(mean(tot.unc_sum)), num(maxes.unc_max), histogram(unc),
    num(maxes.lag_max), histogram(lg),
    num(latency.mean), num(latency.max), num(latency:percentile(99)), num(STEP))
  reportlib.write_atomic(path, out)
end

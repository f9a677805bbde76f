-- wsgi-baseline report library, shared by report.lua and session.lua.
-- done() writes the exact figures as one JSON object to the file named by
-- WSGI_BASELINE_REPORT, leaving wrk's stdout untouched. The printed summary is
-- rounded to two decimals; these are the raw counters and microseconds, plus a
-- log-bucketed latency histogram (about 1 % wide) so that several clients'
-- results can be merged without averaging percentiles. A script may append its
-- own JSON members (`extra`, starting with ", ") before the closing brace.

local M = {}

function M.num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if x == math.floor(x) and math.abs(x) < 2^53 then return string.format("%d", x) end
  return string.format("%.6f", x)
end

local num = M.num

local function stats(s)
  return string.format('{"min": %s, "max": %s, "mean": %s, "stdev": %s}',
    num(s.min), num(s.max), num(s.mean), num(s.stdev))
end

-- A JSON string literal; our strings are ASCII keys, methods and values.
function M.str(s)
  return '"' .. string.gsub(tostring(s), '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

-- {key = number} -> JSON object with keys in sorted order, so output is stable.
function M.counts(t)
  local keys, parts = {}, {}
  for k in pairs(t) do table.insert(keys, tostring(k)) end
  table.sort(keys)
  local byname = {}
  for k, v in pairs(t) do byname[tostring(k)] = v end
  for _, k in ipairs(keys) do
    table.insert(parts, string.format("%s: %s", M.str(k), num(byname[k])))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local PCTS = {50, 75, 90, 99, 99.9, 99.99}

-- Reading every distinct latency value through wrk's API is quadratic: latency(i)
-- (stats_value_at in wrk 4.1's src/stats.c) walks the counts array from the minimum
-- on every call. Measured: 0.15-0.4 s at 100 connections, and at 500 connections of a
-- 3-minute cell it can outlast wrk's time limit. Debian's wrk runs on LuaJIT, whose
-- FFI reads the same array (wrk's `stats` struct, unchanged from 4.0 to 4.2) in one
-- linear pass; it is used only when it agrees with what the API reports (count, min,
-- max, number of distinct values), otherwise the API loop runs.
local has_ffi, ffi = pcall(require, "ffi")
if has_ffi then
  has_ffi = pcall(ffi.cdef, [[
    typedef struct {
      uint64_t count; uint64_t limit; uint64_t min; uint64_t max; uint64_t data[];
    } wsgi_baseline_stats;
  ]])
end

-- {values, counts} read straight from wrk's array, or nil when it cannot be trusted.
local function values_from_array(latency)
  if not has_ffi then return nil end
  local ok, s = pcall(function() return ffi.cast("wsgi_baseline_stats **", latency)[0] end)
  if not ok or s == nil then return nil end
  local lo, hi = tonumber(s.min), tonumber(s.max)
  if lo ~= latency.min or hi ~= latency.max or hi >= tonumber(s.limit) then return nil end
  local values, counts, total = {}, {}, 0
  for v = lo, hi do
    local n = tonumber(s.data[v])
    if n > 0 then
      values[#values + 1] = v
      counts[#counts + 1] = n
      total = total + n
    end
  end
  if total ~= tonumber(s.count) or #values ~= #latency then return nil end
  return values, counts
end

-- {values, counts} through wrk's API: latency(i) is the i-th distinct value.
local function values_from_api(latency)
  local values, counts = {}, {}
  for i = 1, #latency do
    local v, n = latency(i)
    if v ~= nil and n ~= nil and n > 0 then
      values[#values + 1] = v
      counts[#counts + 1] = n
    end
  end
  return values, counts
end

-- The distinct latency values (us) and their counts, in increasing order, and how
-- they were read. WSGI_BASELINE_REPORT_CHECK=1 (tests) reads both ways and fails
-- loudly if they differ; WSGI_BASELINE_LATENCY_READ=api forces the API loop.
function M.latency_values(latency)
  local values, counts
  if os.getenv("WSGI_BASELINE_LATENCY_READ") ~= "api" then
    values, counts = values_from_array(latency)
  end
  local how = "stats-array"
  if values == nil then
    values, counts = values_from_api(latency)
    how = "api"
  elseif os.getenv("WSGI_BASELINE_REPORT_CHECK") == "1" then
    local v2, c2 = values_from_api(latency)
    assert(#v2 == #values, "latency values: array and API disagree on their number")
    for i = 1, #values do
      assert(v2[i] == values[i] and c2[i] == counts[i], "latency values: array and API disagree")
    end
  end
  return values, counts, how
end

function M.done(summary, latency, requests, extra)
  local path = os.getenv("WSGI_BASELINE_REPORT")
  if path == nil or path == "" then return end
  local e = summary.errors
  local pct = {}
  for _, p in ipairs(PCTS) do
    table.insert(pct, string.format('"%s": %s', tostring(p), num(latency:percentile(p))))
  end
  -- wrk 4.1: #latency is the number of distinct latency values and latency(i)
  -- returns the i-th value (microseconds) with its count.
  local buckets, order = {}, {}
  local step = math.log(1.01)
  local values, counts, how = M.latency_values(latency)
  for i = 1, #values do
    local v, n = values[i], counts[i]
    local lower = 0
    if v >= 1 then lower = math.floor(math.exp(math.floor(math.log(v) / step) * step) + 0.5) end
    if buckets[lower] == nil then buckets[lower] = 0; table.insert(order, lower) end
    buckets[lower] = buckets[lower] + n
  end
  table.sort(order)
  local hist = {}
  for _, lower in ipairs(order) do
    table.insert(hist, string.format("[%d, %d]", lower, buckets[lower]))
  end
  local out = string.format(
    '{"duration_us": %s, "requests": %s, "bytes": %s, ' ..
    '"errors": {"connect": %s, "read": %s, "write": %s, "status": %s, "timeout": %s}, ' ..
    '"latency_us": {"min": %s, "max": %s, "mean": %s, "stdev": %s, "percentiles": {%s}}, ' ..
    '"requests_per_thread_sec": %s, "latency_histogram_us": [%s], ' ..
    '"latency_values_read_from": %s%s}\n',
    num(summary.duration), num(summary.requests), num(summary.bytes),
    num(e.connect), num(e.read), num(e.write), num(e.status), num(e.timeout),
    num(latency.min), num(latency.max), num(latency.mean), num(latency.stdev),
    table.concat(pct, ", "), stats(requests), table.concat(hist, ", "), M.str(how),
    extra or "")
  M.write_atomic(path, out)
end

-- Written under a temporary name and renamed, like every file of raw/: a reader (the
-- harness, after wrk exits) never sees half a report.
function M.write_atomic(path, text)
  local tmp = path .. ".part"
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

return M

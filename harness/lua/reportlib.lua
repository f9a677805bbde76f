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
  for i = 1, #latency do
    local v, n = latency(i)
    if v ~= nil and n ~= nil and n > 0 then
      local lower = 0
      if v >= 1 then lower = math.floor(math.exp(math.floor(math.log(v) / step) * step) + 0.5) end
      if buckets[lower] == nil then buckets[lower] = 0; table.insert(order, lower) end
      buckets[lower] = buckets[lower] + n
    end
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
    '"requests_per_thread_sec": %s, "latency_histogram_us": [%s]%s}\n',
    num(summary.duration), num(summary.requests), num(summary.bytes),
    num(e.connect), num(e.read), num(e.write), num(e.status), num(e.timeout),
    num(latency.min), num(latency.max), num(latency.mean), num(latency.stdev),
    table.concat(pct, ", "), stats(requests), table.concat(hist, ", "), extra or "")
  local tmp = path .. ".part"
  local f = assert(io.open(tmp, "w"))
  f:write(out)
  f:close()
  assert(os.rename(tmp, path))
end

return M

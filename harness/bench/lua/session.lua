-- wsgi-baseline "session" workload: a GET/POST/DELETE mix over a key-value store.
--
-- Load: wrk -s harness/bench/lua/session.lua http://HOST:PORT/kv/   (the URL's path is the
-- key prefix; "/" means "/kv/"). Environment, all recorded in the report:
--   WSGI_BASELINE_MIX="80,15,5"   GET,POST,DELETE weights
--   WSGI_BASELINE_KEYS=1000       keys per wrk thread (thread t uses t<t>-k1 … t<t>-kN)
--   WSGI_BASELINE_SEED=1          each thread draws from seed*1000+t
--   WSGI_BASELINE_VALUE_BYTES=64  size of each POSTed value (unique per request)
--   WSGI_BASELINE_REPORT=FILE     where done() writes the JSON report
--
-- The report is report.lua's JSON plus a "session" member: requests issued per
-- method, responses per status and per reply kind. Keys are partitioned by thread,
-- so with one connection per thread (-c equal to -t) every key's history is a
-- sequence the script knows exactly: it then checks each response against its
-- model of the store (a GET returns the last POSTed value or 404, a DELETE answers
-- 200 only if the key exists) and reports the final state it expects per key.
-- With more connections per thread responses cannot be matched to requests (wrk's
-- Lua API has no connection identity), so "exact" is false and those parts are null.
--
-- Per-thread figures live in scalar globals only: wrk 4.1's thread:get() copies a
-- table by popping one value too many from the thread's Lua stack, which crashes
-- on nested tables, so done() fetches numbers and strings one name at a time.

local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local reportlib = dofile(here .. "reportlib.lua")
local num, str, counts = reportlib.num, reportlib.str, reportlib.counts

local function env_int(name, default)
  local v = tonumber(os.getenv(name) or "")
  if v == nil then return default end
  return math.floor(v)
end

local METHODS = {"GET", "POST", "DELETE"}
local MIX = {}
do
  local text, i = os.getenv("WSGI_BASELINE_MIX") or "80,15,5", 1
  for w in string.gmatch(text, "[^,]+") do MIX[METHODS[i] or "?"] = tonumber(w); i = i + 1 end
  for _, m in ipairs(METHODS) do assert(MIX[m] and MIX[m] >= 0, "WSGI_BASELINE_MIX: need 3 weights") end
  assert(MIX.GET + MIX.POST + MIX.DELETE > 0, "WSGI_BASELINE_MIX: weights sum to 0")
end
local KEYS = math.max(1, env_int("WSGI_BASELINE_KEYS", 1000))
local SEED = env_int("WSGI_BASELINE_SEED", 1)
local VALUE_BYTES = math.max(16, env_int("WSGI_BASELINE_VALUE_BYTES", 64))
local KEY_REPORT_LIMIT = 10000 -- per-key states beyond this would bloat the report
local PREFIX = wrk.path
if PREFIX == "/" or string.sub(PREFIX, -1) ~= "/" then PREFIX = "/kv/" end

-- main state: number the threads; setup(thread) runs before each thread's init().
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- thread state ---------------------------------------------------------------
local verifying, seq

-- Counter globals, listed in `counter_names` so done() knows what to fetch:
-- i_<method> issued, s_<status> responses, r_<kind> replies, b_<method>_<status>.
local function bump(name)
  local v = _G[name]
  if v == nil then counter_names = counter_names .. name .. ","; v = 0 end
  _G[name] = v + 1
end

function init(args)
  math.randomseed(SEED * 1000 + id)
  counter_names, examples, exact = "", "", true
  -- wrk calls request() once on the first thread to verify the script's request
  -- (script_verify_request) and never sends it: do not count that one.
  verifying = (id == 1)
  seq = 0
end

function request()
  if verifying then
    verifying = false
    return wrk.format("GET", PREFIX .. "verify")
  end
  local r = math.random() * (MIX.GET + MIX.POST + MIX.DELETE)
  local method = "DELETE"
  if r < MIX.GET then method = "GET" elseif r < MIX.GET + MIX.POST then method = "POST" end
  local key = "t" .. id .. "-k" .. math.random(KEYS)
  seq = seq + 1
  local body = nil
  if method == "POST" then
    body = "v" .. id .. "." .. seq
    body = body .. string.rep(".", VALUE_BYTES - #body)
  end
  bump("i_" .. method)
  if exact and p_method ~= nil then
    -- A second request before the first was answered: several connections share
    -- this thread (or one was lost to a reconnect), so matching is impossible.
    exact = false
  end
  if exact then p_method, p_key, p_body = method, key, body end
  return wrk.format(method, PREFIX .. key, nil, body)
end

local function kind(status, body)
  if status == 201 then return "created" end
  if status == 200 and body == "Deleted" then return "deleted" end
  if status == 200 then return "value" end
  if status == 404 then return "not_found" end
  return "other"
end

-- The model of the store: global "m:<key>" is "+<value>" (present), "-" (absent) or
-- nil (unknown: the store may hold keys from a warm-up). Check one response against
-- it, then record what the response proves.
local function check(method, key, value, status, body)
  local st = _G["m:" .. key]
  local ok = true
  if method == "POST" then
    ok = status == 201
    _G["m:" .. key] = ok and ("+" .. value) or nil
  elseif method == "DELETE" then
    ok = (status == 200 and body == "Deleted") or status == 404
    if st ~= nil then ok = ok and ((st ~= "-") == (status == 200)) end
    _G["m:" .. key] = (status == 200 or status == 404) and "-" or nil
  else
    if st ~= nil then ok = (st == "+" .. body and status == 200) or (st == "-" and status == 404) end
    if status == 200 then _G["m:" .. key] = "+" .. body
    elseif status == 404 then _G["m:" .. key] = "-" end
  end
  if st == nil and method ~= "POST" then bump("unknown"); return end
  bump("checked")
  if not ok then
    bump("mismatches")
    if _G.mismatches <= 5 then
      examples = examples .. string.format("%s %s -> %d %q (model: %s)\n", method, key, status,
        string.sub(body, 1, 40), st == nil and "unknown" or (st == "-" and "absent" or "present"))
    end
  end
end

function response(status, headers, body)
  bump("s_" .. status)
  bump("r_" .. kind(status, body))
  if not exact then return end
  if p_method == nil then exact = false; return end
  local method, key, value = p_method, p_key, p_body
  p_method, p_key, p_body = nil, nil, nil
  bump("b_" .. method .. "_" .. status)
  check(method, key, value, status, body)
end

-- main state again: gather the threads' globals and write the report ------------
local function group(totals, prefix)
  local out = {}
  for name, v in pairs(totals) do
    if string.sub(name, 1, #prefix) == prefix then out[string.sub(name, #prefix + 1)] = v end
  end
  return counts(out)
end

local function key_report(t, tid, parts)
  local pk = t:get("p_key")
  for n = 1, KEYS do
    local key = "t" .. tid .. "-k" .. n
    local m, p = t:get("m:" .. key), pk == key
    if m ~= nil or p then
      local state = m == nil and "unknown" or (m == "-" and "absent" or "present")
      local value = (m ~= nil and m ~= "-") and str(string.sub(m, 2)) or "null"
      local pv = p and t:get("p_body") or nil
      table.insert(parts, string.format('%s: {"state": %s, "value": %s, "pending": %s, ' ..
        '"pending_value": %s}', str(key), str(state), value,
        p and str(t:get("p_method")) or "null", pv and str(pv) or "null"))
    end
  end
end

function done(summary, latency, requests)
  local totals, all_exact, inflight, ex = {}, true, 0, {}
  for _, t in ipairs(threads) do
    for name in string.gmatch(t:get("counter_names") or "", "[^,]+") do
      totals[name] = (totals[name] or 0) + t:get(name)
    end
    all_exact = all_exact and t:get("exact")
    if t:get("p_method") ~= nil then inflight = inflight + 1 end
    for line in string.gmatch(t:get("examples") or "", "[^\n]+") do
      if #ex < 5 then table.insert(ex, str(line)) end
    end
  end
  local detail = '"exact": false, "by_method": null, "checks": null, ' ..
    '"in_flight_at_end": null, "keys": null'
  if all_exact then
    local keys = "null"
    if KEYS * #threads <= KEY_REPORT_LIMIT then
      local parts = {}
      for tid, t in ipairs(threads) do key_report(t, tid, parts) end
      keys = "{" .. table.concat(parts, ", ") .. "}"
    end
    detail = string.format('"exact": true, "by_method": {"DELETE": %s, "GET": %s, "POST": %s}, ' ..
      '"checks": {"checked": %s, "unknown": %s, "mismatches": %s, "examples": [%s]}, ' ..
      '"in_flight_at_end": %d, "keys": %s',
      group(totals, "b_DELETE_"), group(totals, "b_GET_"), group(totals, "b_POST_"),
      num(totals.checked or 0), num(totals.unknown or 0), num(totals.mismatches or 0),
      table.concat(ex, ", "), inflight, keys)
  end
  local issued = {GET = totals.i_GET or 0, POST = totals.i_POST or 0, DELETE = totals.i_DELETE or 0}
  local extra = string.format(', "session": {"format_version": 1, "path_prefix": %s, ' ..
    '"mix": {"GET": %s, "POST": %s, "DELETE": %s}, "keys_per_thread": %d, "seed": %d, ' ..
    '"value_bytes": %d, "threads": %d, "issued": %s, "status": %s, "replies": %s, %s}',
    str(PREFIX), num(MIX.GET), num(MIX.POST), num(MIX.DELETE), KEYS, SEED, VALUE_BYTES,
    #threads, counts(issued), group(totals, "s_"), group(totals, "r_"), detail)
  reportlib.done(summary, latency, requests, extra)
end

-- wsgi-baseline reporter: wrk's done() hook writes the exact figures as one JSON
-- object to the file named by WSGI_BASELINE_REPORT, leaving wrk's stdout untouched.
-- The printed summary is rounded to two decimals; these are the raw counters and
-- microseconds, plus a log-bucketed latency histogram (about 1 % wide) so that
-- several clients' results can be merged without averaging percentiles.
-- The writer lives in reportlib.lua, shared with session.lua.

-- wrk loads a script with luaL_dofile, so its source is "@<path as given to -s>":
-- the library is found beside this file from whatever directory wrk runs in.
local here = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local reportlib = dofile(here .. "reportlib.lua")

function done(summary, latency, requests)
  reportlib.done(summary, latency, requests)
end

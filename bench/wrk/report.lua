-- Shared by form_post.lua and refresh.lua: counts response statuses per thread and
-- prints one machine-readable line at the end of the run:
--
--   RESULT rps=... p50_ms=... p90_ms=... p99_ms=... non2xx=... errors=... requests=...
--
-- non2xx counts every status outside 200-299 (wrk's own "Non-2xx" skips 3xx);
-- errors adds up wrk's socket errors (connect, read, write, timeout). A run is
-- valid only when both are 0.
local report = {}

local threads = {}

function report.setup(thread)
   table.insert(threads, thread)
   thread:set("thread_index", #threads)
end

-- Per-thread state lives in globals so that done() can read it with thread:get().
statuses = {}
non2xx = 0

function report.response(status)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      statuses[status] = (statuses[status] or 0) + 1
   end
end

local function ms(us)
   return us / 1000.0
end

function report.done(summary, latency, extra)
   local total_non2xx = 0
   local by_status = {}
   local lines = {}
   for _, thread in ipairs(threads) do
      total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
      for status, count in pairs(thread:get("statuses") or {}) do
         by_status[status] = (by_status[status] or 0) + count
      end
   end
   for status, count in pairs(by_status) do
      table.insert(lines, string.format("%d=%d", status, count))
   end
   table.sort(lines)
   local e = summary.errors
   local errors = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   local line = string.format(
      "RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d errors=%d requests=%d duration_s=%.3f",
      summary.requests / seconds,
      ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
      ms(latency.max), total_non2xx, errors, summary.requests, seconds)
   if extra then
      line = line .. " " .. extra
   end
   io.write(line .. "\n")
   if #lines > 0 then
      io.write("STATUSES " .. table.concat(lines, " ") .. "\n")
   end
end

return report

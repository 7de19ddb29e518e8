-- refresh_token grant with rotation: every request spends a refresh token that no earlier
-- request used. The tokens come from a file, one per line:
--
--   BENCH_TOKEN_FILE=rt.txt BENCH_AUTHORIZATION='Basic YmVuY2g6c2VjcmV0' \
--   wrk -t1 -c16 -d10s -s refresh.lua http://127.0.0.1:4000/token
--
-- or as script arguments: ... /token -- <token-file> '<authorization>' [<threads>].
-- With more than one wrk thread, give the thread count so that thread k takes lines
-- k, k+T, k+2T, ... and no two threads share a token. When a thread runs out it sends
-- an empty token (the server answers 400, so the run is counted invalid) and the
-- RESULT line carries exhausted=1.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local report = dofile(here .. "report.lua")

setup = report.setup
response = report.response

local function form_encode(value)
   return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local tokens = {}
local next_token = 1
local headers = {}
exhausted = 0
used = 0

function init(args)
   local path = args[1] or os.getenv("BENCH_TOKEN_FILE")
   local authorization = args[2] or os.getenv("BENCH_AUTHORIZATION")
   local nthreads = tonumber(args[3] or os.getenv("BENCH_WRK_THREADS") or "1")
   if not path or path == "" then
      error("refresh.lua: give the token file as the first script argument or BENCH_TOKEN_FILE")
   end
   local file = assert(io.open(path, "r"))
   local line_no = 0
   local mine = (thread_index or 1) - 1
   for line in file:lines() do
      if line ~= "" then
         if line_no % nthreads == mine then
            tokens[#tokens + 1] = form_encode(line)
         end
         line_no = line_no + 1
      end
   end
   file:close()
   headers["Content-Type"] = "application/x-www-form-urlencoded"
   headers["Accept"] = "application/json"
   if authorization and authorization ~= "" then
      headers["Authorization"] = authorization
   end
end

function request()
   local token = tokens[next_token]
   if token then
      next_token = next_token + 1
      used = used + 1
   else
      token = ""
      exhausted = 1
   end
   return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. token)
end

local threads = {}
local report_setup = setup
function setup(thread)
   table.insert(threads, thread)
   report_setup(thread)
end

function done(summary, latency, requests)
   local was_exhausted, total_used = 0, 0
   for _, thread in ipairs(threads) do
      was_exhausted = math.max(was_exhausted, thread:get("exhausted") or 0)
      total_used = total_used + (thread:get("used") or 0)
   end
   report.done(summary, latency, string.format("tokens_used=%d exhausted=%d", total_used, was_exhausted))
end

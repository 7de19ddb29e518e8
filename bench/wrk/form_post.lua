-- POSTs one fixed application/x-www-form-urlencoded body with a fixed Authorization
-- header, e.g. the client_credentials grant with client_secret_basic:
--
--   BENCH_FORM_BODY='grant_type=client_credentials&scope=api' \
--   BENCH_AUTHORIZATION='Basic YmVuY2g6c2VjcmV0' \
--   wrk -t1 -c16 -d10s -s form_post.lua http://127.0.0.1:4000/token
--
-- or the same two values as script arguments: ... /token -- '<body>' '<authorization>'.
-- The request is static (no request() function), so wrk builds it once.
local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local report = dofile(here .. "report.lua")

setup = report.setup
response = report.response

function init(args)
   local body = args[1] or os.getenv("BENCH_FORM_BODY")
   local authorization = args[2] or os.getenv("BENCH_AUTHORIZATION")
   if not body or body == "" then
      error("form_post.lua: give the form body as the first script argument or BENCH_FORM_BODY")
   end
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Accept"] = "application/json"
   if authorization and authorization ~= "" then
      wrk.headers["Authorization"] = authorization
   end
end

function done(summary, latency, requests)
   report.done(summary, latency)
end

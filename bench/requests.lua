-- wrk script of bench/run.py: replay the requests of a file round-robin, print a JSON summary.
-- File format, one request a line, tab-separated: METHOD  PATH  AUTHORIZATION  FORM-BODY
-- (empty AUTHORIZATION or FORM-BODY: none). Usage: wrk ... -s requests.lua URL -- FILE

local reqs = {}
local count = 0
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    local method, target, auth, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    if auth ~= "" then headers["Authorization"] = auth end
    if body == "" then
      body = nil
    else
      headers["Content-Type"] = "application/x-www-form-urlencoded"
    end
    count = count + 1
    reqs[count] = wrk.format(method, target, headers, body)
  end
end

function request()
  index = index % count + 1
  return reqs[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

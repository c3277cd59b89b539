-- wrk script of bench/run.py's refresh_token scenario: POST /oauth/token grant_type=refresh_token,
-- each refresh token used once, as a client that rotates them does (a second use would revoke the
-- token's whole family). Usage: wrk -tN ... -s refresh.lua URL -- TOKENS THREADS AUTHORIZATION
--   TOKENS         a file of refresh tokens, one a line; rewritten at the end with those left
--   THREADS        wrk's -t, so that each thread takes its share: every THREADS-th line
--   AUTHORIZATION  the client's Authorization header (HTTP Basic)
-- Each thread keeps a queue of its own tokens: a request takes the oldest, and each 200 answer's
-- new refresh_token joins the queue's end. A thread needs more tokens than its connections (each
-- connection holds one in flight); the tokens in flight when wrk stops are lost, since their
-- answers are never read, so each run leaves up to one token per connection behind. A non-200
-- answer is an error (wrk counts it), and so is a 200 without a refresh_token.

local threads = {}

-- Main state: number the threads and collect what they leave.

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

-- Each thread's state.

queue, first, last, missing = {}, 1, 0, 0
local headers

function init(args)
  path = args[1]
  local count = tonumber(args[2])
  headers = {["Authorization"] = args[3], ["Content-Type"] = "application/x-www-form-urlencoded"}
  local line = 0
  for token in io.lines(path) do
    if token ~= "" then
      line = line + 1
      if (line - 1) % count == id - 1 then
        last = last + 1
        queue[last] = token
      end
    end
  end
end

function request()
  local token = "none-left"  -- refused with invalid_grant: an error, never a token reused
  if first <= last then
    token = queue[first]
    queue[first] = nil
    first = first + 1
  end
  return wrk.format("POST", "/oauth/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, _, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then
      last = last + 1
      queue[last] = token
    else
      missing = missing + 1
    end
  end
end

-- Main state again: write back the tokens left, then the summary requests.lua prints.

function done(summary, latency, requests)
  local left, lines, missed = 0, {}, 0
  local path
  for _, thread in ipairs(threads) do
    path = thread:get("path")
    local queued, from, to = thread:get("queue"), thread:get("first"), thread:get("last")
    for index = from, to do
      lines[#lines + 1] = queued[index]
    end
    missed = missed + thread:get("missing")
  end
  local file = assert(io.open(path, "w"))
  file:write(table.concat(lines, "\n"), "\n")
  file:close()
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"tokens_left": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status + missed, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, #lines))
end

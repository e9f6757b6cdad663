-- Cycles over pre-formatted requests read from a file (one a line: `api key<TAB>JSON body`)
-- and prints the run's figures as one JSON line when done. Use with one thread (-t1).
-- Arguments: the requests file, the path ("/graphql"), and optionally "check-bodies" to count
-- answers whose body holds GraphQL errors (it makes wrk read every body: soak tests only).
local requests = {}
local next_index = 0
local threads = {}
graphql_errors = 0

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  for line in io.lines(args[1]) do
    local key, body = line:match("^([^\t]*)\t(.*)$")
    local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
    if key ~= "" then
      headers["Authorization"] = "Bearer " .. key
    end
    requests[#requests + 1] = wrk.format("POST", args[2] or "/graphql", headers, body)
  end
  if #requests == 0 then
    error("no requests in " .. args[1])
  end
  if args[3] == "check-bodies" then
    response = function(status, headers, body)
      if body ~= nil and body:find('"errors"', 1, true) then
        graphql_errors = graphql_errors + 1
      end
    end
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  local found = 0
  for _, thread in ipairs(threads) do
    found = found + (thread:get("graphql_errors") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "graphql_errors": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "p999_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout, found,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max
  ))
end

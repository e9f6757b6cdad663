-- Cycles over pre-formatted requests read from a file and prints the run's figures as one JSON line when done.
-- Use with one thread (-t1). One request a line: `api key<TAB>JSON body`, a POST of the body to the path below,
-- or `api key<TAB>GET /path?query`, a GET of that path without a body (the REST endpoint).
-- Arguments: the requests file, the path ("/graphql"), then any of these options:
--   check-bodies     count answers whose body holds GraphQL errors (wrk then reads every body: soak tests only)
--   expect-status=N  count answers whose status is not N (so that an expected 4xx is not an error)
--   count-statuses   count answers by status: 200, 429, 503 and any other (printed as status_200 and so on)
--   fresh=XXXXXX     replace FRESH_PLACEHOLDER in every body by a name never sent before: "F", these six
--                    characters (different for every run) and a 10-digit counter; no cache can hold it
local requests = {}
local heads, tails = {}, {}
local next_index = 0
local threads = {}
local check_bodies, expected_status, fresh_prefix, count_statuses = false, nil, nil, false
local sent = 0
-- As long as the names that replace it, so that Content-Length stays right.
local FRESH_PLACEHOLDER = "F0000000000000000"
graphql_errors = 0
unexpected_status = 0
status_200, status_429, status_503, status_other = 0, 0, 0, 0

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  for i = 3, #args do
    local name, value = args[i]:match("^([%w-]+)=?(.*)$")
    if name == "check-bodies" then
      check_bodies = true
    elseif name == "expect-status" then
      expected_status = tonumber(value)
    elseif name == "count-statuses" then
      count_statuses = true
    elseif name == "fresh" then
      assert(#value == 6, "fresh= takes six characters")
      fresh_prefix = value
    else
      error("unknown option " .. args[i])
    end
  end
  for line in io.lines(args[1]) do
    local key, body = line:match("^([^\t]*)\t(.*)$")
    local target = body:match("^GET (/%S*)$")
    local headers = { ["Accept"] = "application/json" }
    if not target then
      headers["Content-Type"] = "application/json"
    end
    if key ~= "" then
      headers["Authorization"] = "Bearer " .. key
    end
    local formatted
    if target then
      formatted = wrk.format("GET", target, headers, nil)
    else
      formatted = wrk.format("POST", args[2] or "/graphql", headers, body)
    end
    requests[#requests + 1] = formatted
    if fresh_prefix then
      local first, last = formatted:find(FRESH_PLACEHOLDER, 1, true)
      assert(first, "fresh=: a request without " .. FRESH_PLACEHOLDER)
      heads[#requests], tails[#requests] = formatted:sub(1, first - 1), formatted:sub(last + 1)
    end
  end
  if #requests == 0 then
    error("no requests in " .. args[1])
  end
  if check_bodies or expected_status or count_statuses then
    response = function(status, headers, body)
      if count_statuses then
        if status == 200 then
          status_200 = status_200 + 1
        elseif status == 429 then
          status_429 = status_429 + 1
        elseif status == 503 then
          status_503 = status_503 + 1
        else
          status_other = status_other + 1
        end
      end
      if expected_status and status ~= expected_status then
        unexpected_status = unexpected_status + 1
      end
      if check_bodies and body ~= nil and body:find('"errors"', 1, true) then
        graphql_errors = graphql_errors + 1
      end
    end
  end
end

function request()
  next_index = next_index % #requests + 1
  if fresh_prefix then
    sent = sent + 1
    return heads[next_index] .. "F" .. fresh_prefix .. string.format("%010d", sent) .. tails[next_index]
  end
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  local found, unexpected = 0, 0
  local counted = { 0, 0, 0, 0 }
  for _, thread in ipairs(threads) do
    found = found + (thread:get("graphql_errors") or 0)
    unexpected = unexpected + (thread:get("unexpected_status") or 0)
    for i, name in ipairs({ "status_200", "status_429", "status_503", "status_other" }) do
      counted[i] = counted[i] + (thread:get(name) or 0)
    end
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "graphql_errors": %d, '
      .. '"unexpected_status": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "mean_us": %.1f, '
      .. '"max_us": %d, "status_200": %d, "status_429": %d, "status_503": %d, "status_other": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout, found,
    unexpected, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, counted[1], counted[2], counted[3], counted[4]
  ))
end

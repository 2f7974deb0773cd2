-- POST one body file to the URL, and count responses per HTTP status (wrk counts non-2xx/3xx as errors).
--   wrk --latency -t2 -c64 -d30s -s bench/post.lua http://127.0.0.1:3000/models/clothes/v1 -- BODY_FILE CONTENT_TYPE
-- An empty CONTENT_TYPE sends no Content-Type header (as tritonclient's binary requests). More request
-- headers, if any, are in BODY_FILE.headers, one "Name: value" a line (bench/bodies.py writes them).
-- done() prints one line per status: "bench-status <code> <count>".

local threads = {}
statuses = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"), "cannot open body file " .. tostring(args[1]))
   wrk.method = "POST"
   wrk.body = file:read("*a")
   file:close()
   if args[2] ~= nil and args[2] ~= "" then
      wrk.headers["Content-Type"] = args[2]
   end
   local headers = io.open(args[1] .. ".headers", "r")
   if headers then
      for line in headers:lines() do
         local name, value = string.match(line, "^([^:]+):%s*(.-)%s*$")
         if name then
            wrk.headers[name] = value
         end
      end
      headers:close()
   end
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   for status, count in pairs(totals) do
      io.write(string.format("bench-status %d %d\n", status, count))
   end
end

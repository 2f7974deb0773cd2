-- POST one body file to the URL, and count responses per HTTP status.
--   wrk --latency -t2 -c64 -d30s -s bench/post.lua http://127.0.0.1:3000/models/clothes/v1 -- BODY_FILE CONTENT_TYPE
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
   wrk.headers["Content-Type"] = args[2]
   file:close()
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

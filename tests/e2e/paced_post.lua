-- bench/post.lua with a pause before each request: C connections offer about C / (pause + latency)
-- requests per second, also when refusals come back at once (plain wrk would resend them in a loop).
--   wrk --latency -t2 -c512 -d120s -s tests/e2e/paced_post.lua URL -- BODY_FILE CONTENT_TYPE PAUSE_MS

local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(here .. "../../bench/post.lua")

local post_init = init

function init(args)
   post_init(args)
   pause_ms = tonumber(args[3])
end

function delay()
   return pause_ms
end

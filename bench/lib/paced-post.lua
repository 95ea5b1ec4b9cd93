-- bench/wrk/post.lua with a pause before each request on every connection, for a steady load
-- (the soak) instead of the most a server can take.
--
-- Environment: everything post.lua reads, plus
--   SOAK_POST_LUA   the path of bench/wrk/post.lua (required)
--   SOAK_DELAY_MS   milliseconds each connection waits before its next request (default 0)
dofile(assert(os.getenv("SOAK_POST_LUA"), "SOAK_POST_LUA is not set"))

local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")

function delay()
  return pause
end

-- POST register/ with a new username on every request ($PREFIX keeps runs apart).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local counter = 0
function request()
  counter = counter + 1
  local name = os.getenv("PREFIX") .. tid .. "x" .. counter
  local body = '{"username":"' .. name .. '","email":"' .. name .. '@example.com","password":"bench-password-1"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

-- The soak mix: 50% profile, 48% refresh, 1% registrations, 1% logins.
-- Needs $ACCESS, $REFRESH, $USERNAME, $PASSWORD, $PREFIX.
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local json = {["Content-Type"] = "application/json"}
local counter = 0
function request()
  counter = counter + 1
  local kind = counter % 100
  if kind == 0 then
    local name = os.getenv("PREFIX") .. tid .. "x" .. counter
    return wrk.format("POST", "/api/auth/register/", json,
      '{"username":"' .. name .. '","email":"' .. name .. '@example.com","password":"bench-password-1"}')
  elseif kind == 1 then
    return wrk.format("POST", "/api/auth/login/", json,
      '{"username":"' .. os.getenv("USERNAME") .. '","password":"' .. os.getenv("PASSWORD") .. '"}')
  elseif kind < 50 then
    return wrk.format("POST", "/api/auth/token/refresh/", json, '{"refresh":"' .. os.getenv("REFRESH") .. '"}')
  else
    return wrk.format("GET", "/api/auth/profile/", {["Authorization"] = "Bearer " .. os.getenv("ACCESS")})
  end
end

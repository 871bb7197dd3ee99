-- POST login/ as $USERNAME<n> / $PASSWORD, n cycling over $USERS accounts (so
-- that no account has more logins in flight than its failure limit allows).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local users = tonumber(os.getenv("USERS") or "1")
local counter = 0
function request()
  counter = counter + 1
  local name = os.getenv("USERNAME") .. (counter % users)
  return wrk.format(nil, nil, nil, '{"username":"' .. name .. '","password":"' .. os.getenv("PASSWORD") .. '"}')
end

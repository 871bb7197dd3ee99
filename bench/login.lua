-- POST login/ as $USERNAME / $PASSWORD; with $USERS = n, as $USERNAME0 ..
-- $USERNAME<n-1> in turn (so that no account has more logins in flight than
-- its failure limit allows).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local users = tonumber(os.getenv("USERS") or "0")
local counter = 0
function request()
  counter = counter + 1
  local name = os.getenv("USERNAME")
  if users > 0 then
    name = name .. (counter % users)
  end
  return wrk.format(nil, nil, nil, '{"username":"' .. name .. '","password":"' .. os.getenv("PASSWORD") .. '"}')
end

-- POST token/refresh/ with rotation on: every answer carries the next refresh
-- token, which the following requests present ($REFRESH starts the chain).
-- Requests in flight with the previous token are inside the grace window.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("REFRESH")
function request()
  return wrk.format(nil, nil, nil, '{"refresh":"' .. token .. '"}')
end
function response(status, headers, body)
  local next_token = body:match('"refresh":"([^"]+)"')
  if next_token then
    token = next_token
  end
end

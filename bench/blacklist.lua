-- POST token/blacklist/ with a different refresh token on every request, read
-- from the file $TOKENS (one per line; bench.py mints them).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local tokens = {}
for line in io.lines(os.getenv("TOKENS")) do
  tokens[#tokens + 1] = line
end
local next_token = 0
function request()
  next_token = next_token % #tokens + 1
  return wrk.format(nil, nil, nil, '{"refresh":"' .. tokens[next_token] .. '"}')
end

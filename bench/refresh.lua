-- POST token/refresh/ with the refresh token from $REFRESH.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"refresh":"' .. os.getenv("REFRESH") .. '"}'

-- POST token/verify/ with the refresh token from $REFRESH (a database read).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"' .. os.getenv("REFRESH") .. '"}'

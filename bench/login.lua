-- POST login/ as $USERNAME / $PASSWORD.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"' .. os.getenv("USERNAME") .. '","password":"' .. os.getenv("PASSWORD") .. '"}'

-- GET profile/ with the access token from $ACCESS.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ACCESS")

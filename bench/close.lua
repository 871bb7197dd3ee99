-- Every request on a new connection (for HTTPS: a new TLS handshake each).
wrk.headers["Connection"] = "close"

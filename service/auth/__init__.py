"""Who calls and what it may call: credentials checked (credentials.py: tokens, JWTs, client certificates, from
files.py and jwt_tokens.py), the caller named (identity.py: a Caller of caller.py, trusted proxies of proxies.py),
its grants (grants.py), and the gRPC interceptor that does it as each call arrives (interceptor.py)."""

"""Who may call what: the scope each RPC needs, tenants' tokens, and TLS credentials.

scopes and tokens are plain Python (no gRPC); the interceptor that applies them is
driftwise.api.interceptors.auth, the credentials for the server and the channel to Triton are in
driftwise.security.tls."""

"""The team server: REST API for every component, auth (users, tokens, roles) and the web UI."""

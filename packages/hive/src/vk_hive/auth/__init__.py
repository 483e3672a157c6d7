"""User and node authentication: JWT access/refresh tokens, sessions, personal access tokens,
node API keys and the OAuth handoff."""

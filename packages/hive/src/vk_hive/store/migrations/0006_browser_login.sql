-- Browser sign-in (docs/operations.md, security model): single-use login links made by
-- `vk-hive admin login-link`, and browser sessions in auth_sessions.
--
-- login_links keeps only the SHA-256 (lowercase hex) of a link's token, like personal access
-- tokens and invitations; a link is used at most once (used_at) and only before expires_at.
CREATE TABLE login_links (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_login_links_user ON login_links (user_id);

-- A browser session is an auth_sessions row whose session_secret_hash is the SHA-256 of its
-- cookie value; csrf_token is the per-session secret the page sends back in X-CSRF-Token
-- (useless without the cookie, so it is kept as is to be shown on the page).
ALTER TABLE auth_sessions ADD COLUMN csrf_token text;
ALTER TABLE auth_sessions
    ADD CONSTRAINT auth_sessions_session_secret_hash_key UNIQUE (session_secret_hash);

-- organization_invitations keeps only the SHA-256 (lowercase hex) of an invitation's token, like
-- personal access tokens and node API keys: the token itself is shown once, in the response that
-- creates the invitation, and a copy of the database cannot be used to join an organization.
-- Existing rows are converted in place: their tokens keep working, by hash.
ALTER TABLE organization_invitations ADD COLUMN token_hash text;
UPDATE organization_invitations SET token_hash = encode(sha256(convert_to(token, 'UTF8')), 'hex');
ALTER TABLE organization_invitations ALTER COLUMN token_hash SET NOT NULL;
ALTER TABLE organization_invitations
    ADD CONSTRAINT organization_invitations_token_hash_key UNIQUE (token_hash);
ALTER TABLE organization_invitations DROP COLUMN token;

-- Organization-level webhooks (docs/operations.md "Webhooks of an organization").
--
-- An admin subscribes a URL to events of the whole organization: `task_finished` (a coding-agent
-- run of a shared task ended on any node) and `node_offline`. An event writes one delivery per
-- active webhook in the transaction that records the fact (the process mirror's end, the node
-- marked offline), with its body already rendered; any hive process claims due deliveries
-- (FOR UPDATE SKIP LOCKED, the claim pushes next_attempt_at past the try's deadline) and records
-- every try. A `node_offline` delivery names its node and is superseded, not sent, when the node
-- came back before it was due.
CREATE TABLE organization_webhooks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    url              text NOT NULL,
    events           jsonb NOT NULL,
    headers          jsonb NOT NULL DEFAULT '{}',
    secret           text,
    payload_template text,
    active           boolean NOT NULL DEFAULT true,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_organization_webhooks_org ON organization_webhooks (organization_id);
CREATE TRIGGER trg_organization_webhooks_updated_at BEFORE UPDATE ON organization_webhooks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE organization_webhook_deliveries (
    id              uuid PRIMARY KEY,
    webhook_id      uuid NOT NULL REFERENCES organization_webhooks (id) ON DELETE CASCADE,
    event           text NOT NULL,
    body            text NOT NULL,
    node_id         uuid REFERENCES nodes (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending',
    attempt_count   integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_webhook_deliveries_status_check
        CHECK (status IN ('pending', 'delivered', 'failed', 'superseded'))
);
CREATE INDEX idx_organization_webhook_deliveries_webhook
    ON organization_webhook_deliveries (webhook_id, created_at);
CREATE INDEX idx_organization_webhook_deliveries_due
    ON organization_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE TRIGGER trg_organization_webhook_deliveries_updated_at
    BEFORE UPDATE ON organization_webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE organization_webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES organization_webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer NOT NULL,
    status_code  integer,
    duration_ms  integer NOT NULL,
    error        text,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_organization_webhook_attempts_delivery
    ON organization_webhook_attempts (delivery_id, attempt);

-- The first schema of stoa's PostgreSQL store: one table per domain of
-- pkg/store. JSON documents are bytea holding the bytes stoa encoded (as
-- the bbolt store keeps them): jsonb would reorder keys (objects are
-- kept canonical, so digests match on either store) and refuses \u0000.
-- Read one with convert_from(col, 'UTF8')::jsonb.

-- The one row every writing transaction locks first: writers take turns
-- (as they do on bbolt), and the sequences below are assigned in commit
-- order with no gaps.
CREATE TABLE head (
    id           smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    revision     bigint NOT NULL DEFAULT 0, -- the live revision, also the last one
    event_seq    bigint NOT NULL DEFAULT 0,
    snapshot_seq bigint NOT NULL DEFAULT 0,
    delivery_seq bigint NOT NULL DEFAULT 0,
    audit_seq    bigint NOT NULL DEFAULT 0, -- the audit chain's head
    audit_hash   text   NOT NULL DEFAULT ''
);
INSERT INTO head DEFAULT VALUES;

-- The live objects, canonical JSON with defaults applied.
CREATE TABLE objects (
    kind      text  NOT NULL,
    namespace text  NOT NULL,
    name      text  NOT NULL,
    body      bytea NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);

-- The revision log: header (time, actor, action, message, summary),
-- change references, and the changes with their objects.
CREATE TABLE revisions (
    id      bigint PRIMARY KEY,
    header  bytea NOT NULL,
    refs    bytea NOT NULL,
    changes bytea NOT NULL
);

-- The event log (the last 10,000).
CREATE TABLE events (
    seq   bigint PRIMARY KEY,
    event bytea NOT NULL
);

-- API key records (hashes, never keys).
CREATE TABLE keys (
    id     text PRIMARY KEY,
    record bytea NOT NULL
);

-- The hash-chained audit entries, verbatim; the head is in head.
CREATE TABLE audit (
    seq  bigint PRIMARY KEY,
    data bytea NOT NULL
);
CREATE TABLE audit_cursors (
    name text PRIMARY KEY,
    n    bigint NOT NULL
);

-- Error snapshots ('' is no tenant).
CREATE TABLE snapshots (
    id     bigint PRIMARY KEY,
    tenant text        NOT NULL,
    tool   text        NOT NULL,
    time   timestamptz NOT NULL,
    data   bytea       NOT NULL
);
CREATE INDEX snapshots_tenant ON snapshots (tenant, id);

-- The webhook outbox: the delivery (JSON, without its body), its body,
-- and the claim of the replica attempting it.
CREATE TABLE deliveries (
    id              bigint PRIMARY KEY,
    tenant          text  NOT NULL,
    webhook         text  NOT NULL,
    state           text  NOT NULL,
    next_attempt_at timestamptz,
    claim_owner     text,
    claim_until     timestamptz,
    record          bytea NOT NULL,
    body            bytea
);
CREATE INDEX deliveries_pending ON deliveries (id) WHERE state = 'pending';

-- Quota usage, "tenant/subscription" → the counters of the current day
-- and month.
CREATE TABLE quota_usage (
    key             text PRIMARY KEY,
    day             bigint NOT NULL,
    day_count       bigint NOT NULL,
    month           bigint NOT NULL,
    month_count     bigint NOT NULL,
    day_exhausted   bigint NOT NULL DEFAULT 0,
    month_exhausted bigint NOT NULL DEFAULT 0
);

-- Small keyed state of other parts, by namespace; keys may hold NUL.
CREATE TABLE meta (
    ns    text  NOT NULL,
    key   bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (ns, key)
);

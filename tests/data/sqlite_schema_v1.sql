CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_state (feed_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feed_leases (feed_id TEXT PRIMARY KEY, owner TEXT NOT NULL, until TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    feed_id TEXT NOT NULL,
    source TEXT NOT NULL,
    guid TEXT,
    language TEXT,
    published_at TEXT,
    indexed_at TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT 'none',
    score REAL NOT NULL DEFAULT 0,
    story_id TEXT NOT NULL,
    duplicate_of TEXT,
    content_hash TEXT,
    extraction TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_published ON documents (published_at);
CREATE INDEX IF NOT EXISTS documents_language ON documents (language);
CREATE INDEX IF NOT EXISTS documents_feed ON documents (feed_id);
CREATE INDEX IF NOT EXISTS documents_label ON documents (label, score);
CREATE INDEX IF NOT EXISTS documents_story ON documents (story_id);
CREATE INDEX IF NOT EXISTS documents_hash ON documents (content_hash);
CREATE TABLE IF NOT EXISTS doc_terms (
    field TEXT NOT NULL, value TEXT NOT NULL, doc_rowid INTEGER NOT NULL,
    PRIMARY KEY (field, value, doc_rowid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_terms_doc ON doc_terms (doc_rowid);
CREATE TABLE IF NOT EXISTS seen_guids (
    feed_id TEXT NOT NULL, guid TEXT NOT NULL, doc_id TEXT NOT NULL, PRIMARY KEY (feed_id, guid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, rule TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,
    created_at TEXT NOT NULL, due_at TEXT NOT NULL, next_attempt_at TEXT, sent_at TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (status, due_at);
CREATE INDEX IF NOT EXISTS alerts_sent ON alerts (rule, channel, sent_at);
CREATE VIRTUAL TABLE IF NOT EXISTS doc_fts USING fts5(
    title, body,
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* Co M*'"
);

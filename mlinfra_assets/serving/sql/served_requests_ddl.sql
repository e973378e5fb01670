-- One row per request to `mlinfra serve`: when, which model version answered, how many rows,
-- how long it took, the HTTP status and, for a refused request, why. The payload only when the
-- server was started with --log-payloads.
CREATE SCHEMA IF NOT EXISTS monitoring;
CREATE TABLE IF NOT EXISTS monitoring.served_requests (
    served_at TIMESTAMP,
    model_name VARCHAR,
    alias VARCHAR,
    model_version VARCHAR,
    rows INTEGER,
    latency_ms DOUBLE,
    status INTEGER,
    error VARCHAR,
    payload VARCHAR
);

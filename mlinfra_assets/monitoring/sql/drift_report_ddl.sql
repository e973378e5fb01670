-- monitoring.drift_report: one row per partition and feature (and one for the prediction).
CREATE TABLE IF NOT EXISTS monitoring.drift_report (
    _partition DATE,
    feature VARCHAR,
    kind VARCHAR,               -- numeric | categorical | prediction
    psi DOUBLE,
    ks_stat DOUBLE,             -- numeric and prediction only
    ks_pvalue DOUBLE,
    chi2_stat DOUBLE,           -- categorical only
    chi2_pvalue DOUBLE,
    new_categories BIGINT,      -- categories the reference never saw
    drifted BOOLEAN,            -- psi > psi_alert or ks_stat > ks_alert
    partition_drifted BOOLEAN,  -- share of drifted features > drift_share_alert
    reference_rows BIGINT,
    current_rows BIGINT,
    reported_at TIMESTAMP
)

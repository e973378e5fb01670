-- monitoring.drift_report: one row per partition and feature (and one for the prediction, one
-- for the realized metric once annotations arrive). {partition_type}: the spec's `_partition` type.
CREATE TABLE IF NOT EXISTS monitoring.drift_report (
    _partition {partition_type},
    feature VARCHAR,
    kind VARCHAR,               -- numeric | categorical | prediction | performance
    psi DOUBLE,
    ks_stat DOUBLE,             -- numeric and prediction only
    ks_pvalue DOUBLE,
    chi2_stat DOUBLE,           -- categorical only
    chi2_pvalue DOUBLE,
    js_divergence DOUBLE,       -- categorical only: Jensen-Shannon divergence, base 2
    new_categories BIGINT,      -- categories the reference never saw
    missing_reference DOUBLE,   -- share of NULLs in the reference
    missing_current DOUBLE,     -- share of NULLs in the partition
    missing_change DOUBLE,      -- missing_current - missing_reference
    p_value DOUBLE,             -- the feature's test: KS (numeric), chi-squared (categorical)
    p_adjusted DOUBLE,          -- corrected over the partition's features (drift_correction)
    realized_metric DOUBLE,     -- performance only: the training metric against annotators' labels
                                -- of rows that were not training rows (NULL: too few, or undefined)
    realized_low DOUBLE,        -- performance only: 95% bootstrap interval of realized_metric
    realized_high DOUBLE,
    labeled_rows BIGINT,        -- performance only: labeled non-training rows it rests on
    labeled_training_rows BIGINT, -- performance only: labeled rows left out as training rows
    realized_note VARCHAR,      -- performance only: "too few labels: ..." below thresholds.min_labeled_rows
    drifted BOOLEAN,            -- the decision rule (monitoring/decision.py)
    partition_drifted BOOLEAN,  -- share of drifted features > drift_share_alert
    reference_rows BIGINT,
    current_rows BIGINT,
    reported_at TIMESTAMP
)

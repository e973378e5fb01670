-- monitoring.performance: per scored partition, the champion's metric estimated from its
-- calibrated probabilities (before labels arrive) beside the realized metric (once annotators
-- label rows that were not training rows). {partition_type}: the spec's `_partition` type.
CREATE TABLE IF NOT EXISTS monitoring.performance (
    _partition {partition_type},
    model_version VARCHAR,       -- the version(s) whose predictions were estimated
    rows BIGINT,                 -- predictions in the partition
    estimated DOUBLE,            -- the spec's metric, estimated without labels (NULL: undefined)
    estimated_low DOUBLE,        -- 95% interval of the realized figure if the calibration holds
    estimated_high DOUBLE,
    metric VARCHAR,              -- f1_<positive class>, macro_f1 or accuracy
    realized_metric DOUBLE,      -- against annotators' labels of non-training rows (NULL: none,
                                 -- too few (realized_note) or undefined)
    realized_low DOUBLE,         -- 95% bootstrap interval
    realized_high DOUBLE,
    labeled_rows BIGINT,         -- labeled non-training rows the realized figure rests on
    labeled_training_rows BIGINT,-- labeled rows left out as training rows
    realized_note VARCHAR        -- "too few labels: ..." below thresholds.min_labeled_rows
)

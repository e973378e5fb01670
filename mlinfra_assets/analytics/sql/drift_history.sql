-- analytics.drift_history: one row per scored partition (a time window, or an ingest batch):
-- how many features drifted, the worst one, the prediction drift, the realized training metric
-- once annotations arrive, and whether the partition was flagged (it triggers retraining).
-- `_partition` is the window's start or the batch number ({day_note}).
-- Example: SELECT _partition, features_drifted, max_psi, most_drifted_feature, realized_metric
--          FROM analytics.drift_history WHERE flagged ORDER BY _partition;
CREATE OR REPLACE VIEW analytics.drift_history AS
SELECT _partition,{day}
       count(*) FILTER (WHERE kind IN ('numeric', 'categorical')) AS features_checked,
       count(*) FILTER (WHERE kind IN ('numeric', 'categorical') AND drifted) AS features_drifted,
       count(*) FILTER (WHERE kind IN ('numeric', 'categorical') AND drifted)
           / count(*) FILTER (WHERE kind IN ('numeric', 'categorical')) AS drifted_share,
       max(psi) FILTER (WHERE kind IN ('numeric', 'categorical')) AS max_psi,
       arg_max(feature, psi) FILTER (WHERE kind IN ('numeric', 'categorical')) AS most_drifted_feature,
       string_agg(feature, ', ' ORDER BY psi DESC)
           FILTER (WHERE kind IN ('numeric', 'categorical') AND drifted) AS drifted_features,
       max(js_divergence) FILTER (WHERE kind = 'categorical') AS max_js_divergence,
       max(abs(missing_change)) FILTER (WHERE kind IN ('numeric', 'categorical')) AS max_missing_change,
       max(psi) FILTER (WHERE kind = 'prediction') AS prediction_psi,
       any_value(feature) FILTER (WHERE kind = 'performance') AS metric,
       max(realized_metric) FILTER (WHERE kind = 'performance') AS realized_metric,
       max(realized_low) FILTER (WHERE kind = 'performance') AS realized_low,
       max(realized_high) FILTER (WHERE kind = 'performance') AS realized_high,
       max(labeled_rows) FILTER (WHERE kind = 'performance') AS labeled_rows,
       max(realized_note) FILTER (WHERE kind = 'performance') AS realized_note,
       bool_or(partition_drifted) AS flagged,
       max(current_rows) FILTER (WHERE kind IN ('numeric', 'categorical')) AS rows,
       max(reported_at) AS reported_at
FROM monitoring.drift_report
GROUP BY _partition

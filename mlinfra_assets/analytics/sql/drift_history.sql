-- analytics.drift_history: one row per scored day: how many features drifted, the worst one,
-- the prediction drift, the realized F1 once annotations arrive, and whether the day was
-- flagged (it triggers retraining).
-- Example: SELECT day, features_drifted, max_psi, most_drifted_feature, realized_f1
--          FROM analytics.drift_history WHERE flagged ORDER BY day;
CREATE OR REPLACE VIEW analytics.drift_history AS
SELECT _partition AS day,
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
       max(realized_f1) FILTER (WHERE kind = 'performance') AS realized_f1,
       max(labeled_rows) FILTER (WHERE kind = 'performance') AS labeled_rows,
       bool_or(partition_drifted) AS flagged,
       max(current_rows) FILTER (WHERE kind IN ('numeric', 'categorical')) AS rows,
       max(reported_at) AS reported_at
FROM monitoring.drift_report
GROUP BY _partition

-- analytics.drift_history: one row per scored day: how many features drifted, the worst one,
-- the prediction drift, and whether the day was flagged (it triggers retraining).
-- Example: SELECT day, features_drifted, max_psi, most_drifted_feature
--          FROM analytics.drift_history WHERE flagged ORDER BY day;
CREATE OR REPLACE VIEW analytics.drift_history AS
SELECT _partition AS day,
       count(*) FILTER (WHERE kind <> 'prediction') AS features_checked,
       count(*) FILTER (WHERE kind <> 'prediction' AND drifted) AS features_drifted,
       count(*) FILTER (WHERE kind <> 'prediction' AND drifted)
           / count(*) FILTER (WHERE kind <> 'prediction') AS drifted_share,
       max(psi) FILTER (WHERE kind <> 'prediction') AS max_psi,
       arg_max(feature, psi) FILTER (WHERE kind <> 'prediction') AS most_drifted_feature,
       string_agg(feature, ', ' ORDER BY psi DESC) FILTER (WHERE kind <> 'prediction' AND drifted)
           AS drifted_features,
       max(psi) FILTER (WHERE kind = 'prediction') AS prediction_psi,
       bool_or(partition_drifted) AS flagged,
       max(current_rows) AS rows,
       max(reported_at) AS reported_at
FROM monitoring.drift_report
GROUP BY _partition

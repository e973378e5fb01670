-- analytics.training_runs: each evaluated model version, its overall holdout metrics next to the
-- champion's at that time, the gate's decision, and its weakest slice for that metric (lowest
-- value; highest for the calibration error `ece`) among the spec's slices (channel, ...).
-- Example: SELECT model_version, evaluated_at, value AS f1, champion_value, decision,
--                 worst_slice, worst_slice_value, worst_value
--          FROM analytics.training_runs WHERE metric = 'f1' ORDER BY evaluated_at;
-- Every slice's figures: SELECT * FROM training.evaluation WHERE slice <> 'overall'.
CREATE OR REPLACE VIEW analytics.training_runs AS
WITH overall AS (
    SELECT * FROM training.evaluation WHERE slice = 'overall'
),
worst AS (
    SELECT model_version, evaluated_at, metric,
           arg_min(slice, CASE WHEN metric = 'ece' THEN -value ELSE value END) AS worst_slice,
           arg_min(slice_value, CASE WHEN metric = 'ece' THEN -value ELSE value END) AS worst_slice_value,
           CASE WHEN metric = 'ece' THEN max(value) ELSE min(value) END AS worst_value
    FROM training.evaluation
    WHERE slice NOT IN ('overall', 'class') AND value IS NOT NULL AND metric IN ('f1', 'macro_f1', 'pr_auc', 'accuracy', 'ece')
    GROUP BY model_version, evaluated_at, metric
)
SELECT c.model_version, c.evaluated_at, c.metric, c.value,
       c.champion_version, ch.value AS champion_value, c.value - ch.value AS delta,
       c.decision, w.worst_slice, w.worst_slice_value, w.worst_value
FROM overall c
LEFT JOIN overall ch
    ON ch.model_version = c.model_version
   AND ch.evaluated_at = c.evaluated_at
   AND ch.metric = 'champion_' || c.metric
LEFT JOIN worst w
    ON w.model_version = c.model_version
   AND w.evaluated_at = c.evaluated_at
   AND w.metric = c.metric
WHERE NOT starts_with(c.metric, 'champion_')

-- analytics.training_runs: each evaluated model version, its overall holdout metrics next to the
-- champion's at that time, and the gate's decision.
-- Example: SELECT model_version, evaluated_at, value AS f1, champion_value, decision
--          FROM analytics.training_runs WHERE metric = 'f1' ORDER BY evaluated_at;
CREATE OR REPLACE VIEW analytics.training_runs AS
WITH overall AS (
    SELECT * FROM training.evaluation WHERE slice = 'overall'
)
SELECT c.model_version, c.evaluated_at, c.metric, c.value,
       c.champion_version, ch.value AS champion_value, c.value - ch.value AS delta,
       c.decision
FROM overall c
LEFT JOIN overall ch
    ON ch.model_version = c.model_version
   AND ch.evaluated_at = c.evaluated_at
   AND ch.metric = 'champion_' || c.metric
WHERE NOT starts_with(c.metric, 'champion_')

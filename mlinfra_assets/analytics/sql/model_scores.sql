-- analytics.model_scores: every row the champion scored, with its raw features.
-- Example: SELECT day, model_version, avg(score) AS mean_score, avg(predicted_positive::INT) AS positive_rate
--          FROM analytics.model_scores GROUP BY ALL ORDER BY day;
CREATE OR REPLACE VIEW analytics.model_scores AS
SELECT p._partition AS day,
       p.row_id,
       r.{timestamp_column},
       p.{score_column} AS score,
       p.prediction,
       p.prediction = {positive_index} AS predicted_positive,
       p.model_version,
       p.scored_at,
       {raw_features}
FROM monitoring.predictions p
JOIN {raw_table} r ON r.{id_column} = p.row_id

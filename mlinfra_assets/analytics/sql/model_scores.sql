-- analytics.model_scores: every row the champion scored, with its raw features. The platform's
-- columns start with `_` (a feature named `prediction` or `score` never collides with them):
-- _partition, _row_id, one prob_<class> per class, _prediction (class index), _predicted_class
-- (its name), _confidence (its probability), _model_version, _scored_at; then the timestamp
-- (where the spec has one) and the features.
-- Example: SELECT _partition, _model_version, _predicted_class, count(*) AS n, avg(_confidence) AS mean_confidence
--          FROM analytics.model_scores GROUP BY ALL ORDER BY ALL;
CREATE OR REPLACE VIEW analytics.model_scores AS
SELECT p._partition,
       p._row_id,
       {prob_columns},
       p._prediction,
       list_extract({class_names}, p._prediction + 1) AS _predicted_class,
       greatest({prob_columns}) AS _confidence,
       p._model_version,
       p._scored_at,
       {raw_columns}
FROM monitoring.predictions p
JOIN {raw_table} r ON CAST(r.{id_column} AS VARCHAR) = CAST(p._row_id AS VARCHAR)

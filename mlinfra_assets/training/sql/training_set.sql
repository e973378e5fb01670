-- training.training_set: gold, weak and synthetic rows with soft targets, weights and provenance.
-- Every column the platform adds starts with `_` (_row_id, _prob_<class>, _label, _weight,
-- _source), so a feature named `label`, `weight` or `source` never collides with them.
-- Placeholders in braces are identifiers from the validated spec; the three ? are the weights of
-- gold, weak and synthetic rows. Holdout rows never enter (real rows are filtered first).
-- NOT MATERIALIZED: a CTE read twice is otherwise materialized first (at 10M demo rows the
-- synthetic utility's sample of this query peaked at 2.20 GiB and took 5.0 s that way, 1.79 GiB
-- and 4.1 s not; same rows).
WITH real_rows AS NOT MATERIALIZED (
    SELECT CAST(r.{id} AS VARCHAR) AS _row_id, {raw_features}
    FROM {raw_table} AS r
    WHERE NOT {holdout}
),
gold AS NOT MATERIALIZED (
    SELECT CAST(row_id AS VARCHAR) AS row_id, CAST(label AS INTEGER) AS label
    FROM labeling.gold_labels
),
gold_rows AS (
    SELECT x.*, {onehot_gold}, g.label AS _label, CAST(? AS DOUBLE) AS _weight, 'gold' AS _source
    FROM real_rows AS x JOIN gold AS g ON g.row_id = x._row_id
    WHERE g.label BETWEEN 0 AND {last_class}
),
weak_rows AS (
    SELECT x.*, {weak_probs}, CAST(w.label AS INTEGER) AS _label,
           CAST(? AS DOUBLE) AS _weight, 'weak' AS _source
    FROM real_rows AS x JOIN labeling.weak_labels AS w ON CAST(w.row_id AS VARCHAR) = x._row_id
    WHERE w.label BETWEEN 0 AND {last_class}
      AND NOT EXISTS (SELECT 1 FROM gold AS g WHERE g.row_id = x._row_id)
),
synthetic_rows AS (
    SELECT 'syn-' || CAST(s._synthetic_id AS VARCHAR) AS _row_id, {syn_features}, {onehot_syn},
           CAST(s._label AS INTEGER) AS _label, CAST(? AS DOUBLE) AS _weight, 'synthetic' AS _source
    FROM synthetic.synthetic_rows AS s
    WHERE s._label BETWEEN 0 AND {last_class}
)
SELECT * FROM gold_rows
UNION ALL SELECT * FROM weak_rows
UNION ALL SELECT * FROM synthetic_rows
ORDER BY _source, _row_id

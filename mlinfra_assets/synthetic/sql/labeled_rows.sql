-- Labeled real rows outside (or, for privacy, inside) the evaluation holdout: the gold label where a person
-- annotated the row, else the argmax of the label model's class probabilities.
-- Columns: _row_id, the features, _label (class index); the `_` prefix is reserved for the platform,
-- so a feature named `label` or `row_id` never collides.
-- Placeholders are identifiers from the validated spec: {id}, {features}, {raw}, {probs}, {where_holdout}.
SELECT
    r.{id} AS _row_id,
    {features},
    CAST(COALESCE(g.label, list_position([{probs}], list_max([{probs}])) - 1) AS INTEGER) AS _label
FROM {raw} AS r
LEFT JOIN labeling.weak_labels AS w ON CAST(w.row_id AS VARCHAR) = CAST(r.{id} AS VARCHAR)
LEFT JOIN (SELECT CAST(row_id AS VARCHAR) AS row_id, label FROM labeling.gold_labels WHERE label >= 0) AS g
    ON g.row_id = CAST(r.{id} AS VARCHAR)
WHERE {where_holdout}
  AND (g.label IS NOT NULL OR w.row_id IS NOT NULL)

-- Labeled real rows outside (or, for privacy, inside) the evaluation holdout: the gold label where a person
-- annotated the row, else the argmax of the label model's class probabilities.
-- Placeholders are identifiers from the validated spec: {id}, {features}, {raw}, {probs}, {where_holdout}.
SELECT
    r.{id} AS row_id,
    {features},
    CAST(COALESCE(g.label, list_position([{probs}], list_max([{probs}])) - 1) AS INTEGER) AS label
FROM {raw} AS r
LEFT JOIN labeling.weak_labels AS w ON w.row_id = r.{id}
LEFT JOIN (SELECT row_id, label FROM labeling.gold_labels WHERE label >= 0) AS g
    ON g.row_id = r.{id}
WHERE {where_holdout}
  AND (g.label IS NOT NULL OR w.row_id IS NOT NULL)

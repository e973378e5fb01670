SELECT m.row_id, {probs}, p.label, p.confidence, ? AS label_model_version
FROM {table} AS m
JOIN {patterns} AS p USING ({columns})

-- Current rows in long format (_partition, feature, value): the raw rows of the window.
-- {target}, {relation}, {casts}, {columns} are identifiers from the validated spec.
CREATE OR REPLACE TEMP TABLE {target} AS
SELECT _partition, feature, value
FROM (SELECT _partition, {casts} FROM {relation} WHERE _partition >= $start AND _partition < $end)
UNPIVOT INCLUDE NULLS (value FOR feature IN ({columns}))

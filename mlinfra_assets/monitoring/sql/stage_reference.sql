-- Reference rows in long format (feature, value): the real rows of the training set.
-- {target}, {casts}, {columns} are identifiers from the validated spec.
CREATE OR REPLACE TEMP TABLE {target} AS
SELECT feature, value
FROM (SELECT {casts} FROM training.training_set WHERE source <> 'synthetic')
UNPIVOT INCLUDE NULLS (value FOR feature IN ({columns}))

-- Per source: rows, total weight, hard-label counts and weighted soft mass of each class.
SELECT source, {per_class}, count(*) AS rows, sum(weight) AS weight
FROM training.training_set
GROUP BY source
ORDER BY source

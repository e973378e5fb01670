-- Per source: rows, total weight, hard-label counts and weighted soft mass of each class.
SELECT _source AS source, {per_class}, count(*) AS rows, sum(_weight) AS weight
FROM training.training_set
GROUP BY _source
ORDER BY _source

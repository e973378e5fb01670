-- One branch of the category counts of one categorical input (NULL is the category
-- '(null)'). {source} is a FROM item exposing `value`; {partition} is `_partition,` or empty.
SELECT {partition} $feature_{i} AS feature, coalesce(CAST(value AS VARCHAR), '(null)') AS category,
       count(*) AS c
FROM {source}
GROUP BY ALL

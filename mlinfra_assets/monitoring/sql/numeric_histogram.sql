-- One branch of the fine histogram: count, smallest and largest value per bucket of one
-- numeric input (NULL: the NULL bucket). bucket(v) = greatest(-1, least($buckets,
-- floor((v - lo) * inv))) is monotone in v (IEEE subtraction, multiplication by inv > 0 and
-- floor all are; greatest/least skip NULLs, hence the CASE), so every value of a lower bucket
-- is smaller than every value of a higher one: a bucket is found by arithmetic, not by a
-- comparison per bin. {source} is a FROM item exposing `value` ({partition} is either
-- `_partition,` or empty); $feature_{i}, $lo_{i}, $inv_{i} come from the reference statistics.
SELECT {partition} $feature_{i} AS feature,
       CASE WHEN value IS NOT NULL
           THEN CAST(greatest(-1, least($buckets, floor((value - $lo_{i}) * $inv_{i}))) AS INTEGER) END AS b,
       count(*) AS c, min(value) AS v_min, max(value) AS v_max
FROM {source}
GROUP BY ALL

-- One branch of the value-level counts: the rows of one numeric input that fall into its
-- special buckets (drift_num_special: buckets holding a PSI cut, or where the KS maximum may
-- lie inside), counted per distinct value. Same bucket arithmetic as numeric_histogram.sql.
SELECT {partition} $feature_{i} AS feature, b, value, count(*) AS c
FROM (
    SELECT {partition} value,
           CASE WHEN value IS NOT NULL
           THEN CAST(greatest(-1, least($buckets, floor((value - $lo_{i}) * $inv_{i}))) AS INTEGER) END AS b
    FROM {source}
)
WHERE b IN (SELECT b FROM drift_num_special WHERE feature = $feature_{i})
GROUP BY ALL

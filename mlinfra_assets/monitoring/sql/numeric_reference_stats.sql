-- One branch of the reference statistics (the branches of all numeric inputs are joined by
-- UNION ALL): row and value counts, the decile cuts of PSI, and the range [lo, hi] that the
-- fine buckets of numeric_histogram.sql divide (the 0.1% and 99.9% quantiles, so that one
-- outlier does not squeeze the bulk of the values into a few buckets). One quantile
-- aggregate computes all eleven.
-- {reference} is a FROM item exposing `value DOUBLE`; $feature_{i} binds the input's name.
SELECT feature, n, n_values, q[1] AS lo, q[11] AS hi, list_sort(list_distinct(q[2:10])) AS cuts
FROM (
    SELECT $feature_{i} AS feature, count(*) AS n, count(value) AS n_values,
           quantile_cont(value, [0.001, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.999]) AS q
    FROM {reference}
)

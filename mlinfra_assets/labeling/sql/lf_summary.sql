WITH r AS (
    SELECT {columns}, {n_votes} AS n_votes, greatest({votes}) AS hi, least({votes}) AS lo, {gold} AS gold
    FROM {table} AS m {join}
)
SELECT count(*) AS n, {aggregates}
FROM r

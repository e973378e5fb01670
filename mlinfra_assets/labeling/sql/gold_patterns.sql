SELECT {columns}, g.label AS gold, count(*) AS n
FROM {table} AS m
JOIN ({gold}) AS g ON CAST(m.row_id AS VARCHAR) = CAST(g.row_id AS VARCHAR)
WHERE g.label IS NOT NULL
GROUP BY ALL

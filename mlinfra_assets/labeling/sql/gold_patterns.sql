SELECT {columns}, g.label AS gold, count(*) AS n
FROM {table} AS m
JOIN ({gold}) AS g USING (row_id)
WHERE g.label IS NOT NULL
GROUP BY ALL

SELECT {columns}, count(*) AS n
FROM {table}
GROUP BY ALL

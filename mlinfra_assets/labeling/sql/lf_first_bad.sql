SELECT row_id, {lf} AS vote
FROM ({votes}) AS votes
WHERE NOT coalesce({lf}, -1) BETWEEN -1 AND {top}
ORDER BY row_id
LIMIT 1

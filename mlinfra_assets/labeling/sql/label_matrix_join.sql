SELECT {columns}
FROM ({sql_votes}) AS s
JOIN {python_votes} AS p USING (row_id)

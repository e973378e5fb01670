SELECT {id_column} AS row_id, {columns}
FROM {table}

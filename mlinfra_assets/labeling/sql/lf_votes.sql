SELECT row_id, {votes}
FROM ({source}) AS src

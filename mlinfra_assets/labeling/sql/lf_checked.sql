SELECT row_id, {checked}
FROM ({votes}) AS votes

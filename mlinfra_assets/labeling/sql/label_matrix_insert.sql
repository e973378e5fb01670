INSERT INTO {table} BY NAME
{query}

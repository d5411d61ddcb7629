"""PostgreSQL adapters (psycopg 3 + psycopg_pool). Nothing above this package imports psycopg."""

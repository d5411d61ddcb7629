-- A payload is stored as the JSON text it was given (type `json`), not decomposed (`jsonb`):
-- jsonb cannot hold the character U+0000 (a string or key with `\u0000` is refused), while
-- `json` keeps the text as it is, escapes included, and reads back exactly. The service never
-- looks inside a payload in SQL; note that PostgreSQL's json operators and functions
-- (`->`, `json_each`, ...) refuse a value that contains `\u0000` too, so SQL written by hand
-- over payloads must expect that error for such rows. The type change rewrites the table once
-- (an exclusive lock for the length of the rewrite).
ALTER TABLE tasks ALTER COLUMN payload DROP DEFAULT;
ALTER TABLE tasks ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE tasks ALTER COLUMN payload SET DEFAULT '{}'::json;

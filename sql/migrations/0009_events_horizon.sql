-- The event feed's exact horizon: every transaction with a smaller id that could have written
-- this database's history has ended, so the feed may read the rows below it (events_after in
-- queries.sql). The cheap one, pg_snapshot_xmin, is the oldest open writer of any database on
-- the server, so a long transaction elsewhere (another application, a report, a migration)
-- held back every event stream; the feed switches to this one when the same writer stays the
-- oldest for a while (adapters/postgres/events.py). A transaction of another database cannot write here and no
-- longer counts. One whose database cannot be told (a session of another user, whose
-- backend_xid pg_stat_activity hides; a prepared transaction) still counts.
-- pg_current_snapshot() is the statement's snapshot, taken before pg_stat_activity is read: a
-- transaction that gets its id afterwards has one above the snapshot's xmax, the upper bound.
CREATE FUNCTION task_events_horizon() RETURNS xid8 LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x
         WHERE xid(x) NOT IN (SELECT backend_xid FROM pg_stat_activity
                              WHERE backend_xid IS NOT NULL
                                AND datname IS DISTINCT FROM current_database())),
        pg_snapshot_xmax(s.snap))
    FROM (SELECT pg_current_snapshot() AS snap) AS s
$$;

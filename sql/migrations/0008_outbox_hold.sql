-- The relay holds the entries it is sending by a time, not by a row lock: a lock would keep a
-- transaction (and its xid) open while RabbitMQ confirms, and the event feed reads no history
-- newer than the oldest open transaction (events_horizon in queries.sql), so every stream
-- waited on every publish. An entry whose holder died is taken again once the time is past.
ALTER TABLE dispatch_outbox ADD COLUMN held_until timestamptz;

-- When each mail was queued, so that the age of the oldest waiting mail can
-- be told (the metric latch_mail_outbox_oldest_age_seconds), in milliseconds
-- by the database's clock. Mail already waiting counts from this upgrade: a
-- volatile default fills in the rows there are.
ALTER TABLE outbox ADD COLUMN queued_ms BIGINT NOT NULL
    DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000))::BIGINT;

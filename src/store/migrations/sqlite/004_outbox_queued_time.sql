-- When each mail was queued, so that the age of the oldest waiting mail can
-- be told (the metric latch_mail_outbox_oldest_age_seconds). Mail already
-- waiting counts from this upgrade.
ALTER TABLE outbox ADD COLUMN queued_ms INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET queued_ms = CAST(unixepoch('subsec') * 1000 AS INTEGER);

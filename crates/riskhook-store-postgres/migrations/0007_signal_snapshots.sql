-- Backtests (issue 13): every stored session event's signal values, compact, in arrival order.
-- A backtest reads this table alone, in key order: a row of ~1 KB an event (one JSON object of
-- signal name to value; the provenance stays in the assessment's explanation), instead of
-- each event's row and body with its assessment's 3-9 KB JSON found through an index.
-- `signals` is NULL for an event stored without an assessment: a backtest extracts its
-- signals from the event's body again. Written in the transaction that stores the event.
CREATE TABLE signal_snapshots (
    event_seq   BIGINT PRIMARY KEY REFERENCES events (seq),
    received_at BIGINT NOT NULL,
    at          BIGINT NOT NULL,  -- the `now` it was (or would be) assessed at
    user_id     TEXT,
    signals     TEXT
);

-- The events stored before: their values taken from each assessment's full snapshot. An
-- assessment jsonb cannot read (a \u0000 in a string) leaves NULL: that event is replayed
-- from its body.
CREATE FUNCTION pg_temp.signal_values(assessment TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$
BEGIN
    RETURN COALESCE(
        (SELECT jsonb_object_agg(s.key, s.value -> 'value')
         FROM jsonb_each(assessment::jsonb -> 'signals') s)::text,
        '{}');
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

INSERT INTO signal_snapshots (event_seq, received_at, at, user_id, signals)
SELECT e.seq, e.received_at, COALESCE(a.evaluated_at, e.event_timestamp, e.received_at),
       e.vendor_data,
       CASE WHEN a.id IS NOT NULL THEN pg_temp.signal_values(a.assessment) END
FROM events e LEFT JOIN assessments a ON a.event_id = e.id
WHERE e.session_id IS NOT NULL;

DROP FUNCTION pg_temp.signal_values(TEXT);

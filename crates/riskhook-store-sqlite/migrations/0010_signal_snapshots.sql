-- Backtests (issue 13): every stored session event's signal values, compact, in arrival order.
-- A backtest reads this table alone, in key order: a row of ~1 KB an event (one JSON object of
-- signal name to value; the provenance stays in the assessment's explanation), instead of
-- each event's row and body with its assessment's 3-9 KB JSON found through an index.
-- `signals` is NULL for an event stored without an assessment: a backtest extracts its
-- signals from the event's body again. Written in the transaction that stores the event.
CREATE TABLE signal_snapshots (
    event_seq   INTEGER PRIMARY KEY REFERENCES events (seq),
    received_at INTEGER NOT NULL,
    at          INTEGER NOT NULL,  -- the `now` it was (or would be) assessed at
    user_id     TEXT,
    signals     TEXT
);

-- The events stored before: their values taken from each assessment's full snapshot.
INSERT INTO signal_snapshots (event_seq, received_at, at, user_id, signals)
SELECT e.seq, e.received_at, COALESCE(a.evaluated_at, e.event_timestamp, e.received_at),
       e.vendor_data,
       CASE WHEN a.id IS NOT NULL AND json_valid(a.assessment) THEN
           (SELECT json_group_object(s.key, json(s.value -> '$.value'))
            FROM json_each(a.assessment, '$.signals') s)
       END
FROM events e LEFT JOIN assessments a ON a.event_id = e.id
WHERE e.session_id IS NOT NULL
ORDER BY e.seq;

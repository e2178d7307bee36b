-- Four eyes counts people, not keys (issue 11, finding 2). A key belongs to a principal (the
-- person or service behind it); keys made before this migration stand for a person each, named
-- by their id. A pending action keeps the requester as a person (principal, the people who made
-- their key, its age) in JSON, so the approver can be checked against them.
ALTER TABLE api_keys ADD COLUMN principal TEXT;
ALTER TABLE actions ADD COLUMN requester TEXT;

-- 0005: reserved for the nodes migration on another branch (node heartbeats); this
-- placeholder keeps the versions contiguous and is dropped when that branch merges.
SELECT 1;

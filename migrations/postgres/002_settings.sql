-- Values the service generates once and keeps for the log's life, shared by every process
-- that serves it: the key that signs listing cursors, so that a cursor stays valid across a
-- restart and cannot be forged.
CREATE TABLE settings (
  name  TEXT COLLATE "C" PRIMARY KEY,
  value TEXT NOT NULL
);

-- keyward: the usage flushes write, one narrow row per key, apart from the key row.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE "api_key_usage" (
    "key_id" varchar(12) NOT NULL PRIMARY KEY COLLATE "C",
    "request_count" bigint NOT NULL,
    "last_used_at" timestamp with time zone,
    "credits_period" bigint NOT NULL,
    "credits_used" bigint NOT NULL
);

ALTER TABLE "api_key_usage" SET (fillfactor = 50);

-- keyward: the usage flushes write, one narrow row per key, apart from the key row.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE "api_key_usage" (
    "key_id" varchar(12) NOT NULL PRIMARY KEY,
    "request_count" integer NOT NULL,
    "last_used_at" timestamp_with_timezone_text,
    "credits_period" integer NOT NULL,
    "credits_used" integer NOT NULL
);

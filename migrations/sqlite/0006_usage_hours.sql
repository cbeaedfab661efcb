-- keyward: usage analytics, verifications by key, hour, outcome and tags.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE "api_key_usage_hours" (
    "key_id" varchar(12) NOT NULL,
    "hour" timestamp_with_timezone_text NOT NULL,
    "outcome" varchar(24) NOT NULL,
    "tag_set" varchar(32) NOT NULL,
    "owner_id" varchar(255) NOT NULL,
    "tags" text NOT NULL,
    "verifications" integer NOT NULL,
    PRIMARY KEY ("key_id", "hour", "outcome", "tag_set")
);

CREATE INDEX "api_key_usage_hours_owner_idx" ON "api_key_usage_hours" ("owner_id", "hour");

CREATE INDEX "api_key_usage_hours_hour_idx" ON "api_key_usage_hours" ("hour");

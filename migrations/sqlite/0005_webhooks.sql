-- keyward: the webhook outbox and deliveries.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE "api_key_outbox" (
    "event_id" varchar(20) NOT NULL PRIMARY KEY,
    "at" timestamp_with_timezone_text NOT NULL
);

CREATE TABLE "api_key_deliveries" (
    "delivery_id" varchar(20) NOT NULL PRIMARY KEY,
    "endpoint" varchar(2048) NOT NULL,
    "event_id" varchar(20) NOT NULL,
    "status" varchar(16) NOT NULL,
    "attempts" integer NOT NULL,
    "next_attempt_at" timestamp_with_timezone_text NOT NULL,
    "last_status" integer,
    "last_error" varchar(512),
    "created_at" timestamp_with_timezone_text NOT NULL,
    "settled_at" timestamp_with_timezone_text
);

CREATE INDEX "api_key_outbox_at_idx" ON "api_key_outbox" ("at", "event_id");

CREATE INDEX "api_key_deliveries_due_idx" ON "api_key_deliveries" ("status", "next_attempt_at");

CREATE INDEX "api_key_deliveries_created_idx" ON "api_key_deliveries" ("created_at", "delivery_id");

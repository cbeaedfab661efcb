-- keyward: API keys and owner lock rows.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE "api_keys" (
    "id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    "key_id" varchar(12) NOT NULL,
    "owner_id" varchar(255) NOT NULL,
    "name" text NOT NULL,
    "description" text,
    "env" varchar(16) NOT NULL,
    "key_prefix" varchar(16) NOT NULL,
    "digest" blob NOT NULL,
    "digest_algorithm" varchar(16) NOT NULL,
    "pepper_version" integer NOT NULL,
    "sealed_secret" blob,
    "sealed_secret_version" integer,
    "scopes" text NOT NULL,
    "metadata" text NOT NULL,
    "ip_allowlist" text NOT NULL,
    "rate_limit_requests" integer,
    "rate_limit_window_seconds" integer,
    "credits_limit" integer,
    "credits_refill_seconds" integer,
    "request_count" integer NOT NULL,
    "credits_used" integer NOT NULL,
    "credits_period" integer NOT NULL,
    "is_active" boolean NOT NULL,
    "created_at" timestamp_with_timezone_text NOT NULL,
    "updated_at" timestamp_with_timezone_text NOT NULL,
    "not_before" timestamp_with_timezone_text,
    "expires_at" timestamp_with_timezone_text,
    "last_used_at" timestamp_with_timezone_text,
    "revoked_at" timestamp_with_timezone_text,
    "rotated_from" varchar(12)
);

CREATE UNIQUE INDEX "api_keys_key_id_key" ON "api_keys" ("key_id");

CREATE INDEX "api_keys_owner_idx" ON "api_keys" ("owner_id", "created_at", "key_id");

CREATE TABLE "api_key_owners" (
    "owner_id" varchar(255) NOT NULL PRIMARY KEY
);

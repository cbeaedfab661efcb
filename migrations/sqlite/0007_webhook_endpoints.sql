-- keyward: the disabled webhook endpoints.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE "api_key_webhook_endpoints" (
    "endpoint_id" varchar(32) NOT NULL PRIMARY KEY,
    "endpoint" varchar(2048) NOT NULL,
    "disabled_at" timestamp_with_timezone_text NOT NULL,
    "reason" varchar(512) NOT NULL
);

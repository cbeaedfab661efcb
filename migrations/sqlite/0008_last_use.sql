-- keyward: where a key's last recorded use came from (client address, user agent).
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

ALTER TABLE "api_key_usage" ADD COLUMN "last_client_addr" varchar(45);

ALTER TABLE "api_key_usage" ADD COLUMN "last_user_agent" varchar(256);

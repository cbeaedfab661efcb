-- keyward: rotation at most once, who deactivated a key, the rotation chain.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

ALTER TABLE "api_keys" ADD COLUMN "rotated_to" varchar(12) COLLATE "C";

ALTER TABLE "api_keys" ADD COLUMN "deactivated_by" varchar(16);

ALTER TABLE "api_keys" ADD COLUMN "lineage_root" varchar(12) COLLATE "C";

ALTER TABLE "api_keys" ADD COLUMN "lineage_started_at" timestamp with time zone;

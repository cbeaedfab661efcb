-- keyward: the usage flushes write, one narrow row per key, apart from the key row.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE `api_key_usage` (
    `key_id` varchar(12) NOT NULL PRIMARY KEY,
    `request_count` bigint NOT NULL,
    `last_used_at` DATETIME(6),
    `credits_period` bigint NOT NULL,
    `credits_used` bigint NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- keyward: API keys and owner lock rows.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE `api_keys` (
    `id` bigint NOT NULL PRIMARY KEY AUTO_INCREMENT,
    `key_id` varchar(12) NOT NULL,
    `owner_id` varchar(255) NOT NULL,
    `name` text NOT NULL,
    `description` text,
    `env` varchar(16) NOT NULL,
    `key_prefix` varchar(16) NOT NULL,
    `digest` blob NOT NULL,
    `digest_algorithm` varchar(16) NOT NULL,
    `pepper_version` bigint NOT NULL,
    `sealed_secret` blob,
    `sealed_secret_version` bigint,
    `scopes` text NOT NULL,
    `metadata` text NOT NULL,
    `ip_allowlist` text NOT NULL,
    `rate_limit_requests` bigint,
    `rate_limit_window_seconds` bigint,
    `credits_limit` bigint,
    `credits_refill_seconds` bigint,
    `request_count` bigint NOT NULL,
    `credits_used` bigint NOT NULL,
    `credits_period` bigint NOT NULL,
    `is_active` bool NOT NULL,
    `created_at` DATETIME(6) NOT NULL,
    `updated_at` DATETIME(6) NOT NULL,
    `not_before` DATETIME(6),
    `expires_at` DATETIME(6),
    `last_used_at` DATETIME(6),
    `revoked_at` DATETIME(6),
    `rotated_from` varchar(12)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE UNIQUE INDEX `api_keys_key_id_key` ON `api_keys` (`key_id`);

CREATE INDEX `api_keys_owner_idx` ON `api_keys` (`owner_id`, `created_at`, `key_id`);

CREATE TABLE `api_key_owners` (
    `owner_id` varchar(255) NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

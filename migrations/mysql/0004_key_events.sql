-- keyward: the audit log, one row per management action or security-relevant change.
-- Generated from the keyward-sea-orm entities by `cargo xtask migrations`; do not edit.

CREATE TABLE `api_key_events` (
    `event_id` varchar(20) NOT NULL PRIMARY KEY,
    `at` DATETIME(6) NOT NULL,
    `action` varchar(32) NOT NULL,
    `actor_type` varchar(16) NOT NULL,
    `actor_id` varchar(255),
    `owner_id` varchar(255) NOT NULL,
    `key_id` varchar(12),
    `changes` text,
    `client_addr` varchar(45),
    `user_agent` varchar(256),
    `request_id` varchar(128)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX `api_key_events_owner_idx` ON `api_key_events` (`owner_id`, `at`, `event_id`);

CREATE INDEX `api_key_events_key_idx` ON `api_key_events` (`key_id`, `at`, `event_id`);

CREATE INDEX `api_key_events_at_idx` ON `api_key_events` (`at`, `event_id`);

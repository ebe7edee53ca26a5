//! Webhook notifications: generic JSON, ntfy and Discord.

//! The axum server: JSON API, web UI, auth, live updates.

pub mod views;

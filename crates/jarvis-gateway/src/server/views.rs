//! The askama views of the web UI.

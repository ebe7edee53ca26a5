//! Prometheus metrics of the running server.

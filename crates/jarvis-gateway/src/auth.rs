//! Passwords, sessions, API tokens, CSRF tokens and the login limiter.

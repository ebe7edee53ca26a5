//! The OpenAI-compatible client.

//! Shared helpers of the end-to-end tests: finding and running the built
//! `jarvis` binary. Later tests add the sandbox host and the gateway here.

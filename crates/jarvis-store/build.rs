//! The migrations are embedded at compile time (`sqlx::migrate!`); this
//! makes cargo rebuild the crate when one is added or changed.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

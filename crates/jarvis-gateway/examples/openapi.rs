//! Writes the JSON API's OpenAPI document, as `GET /api/v1/openapi.json`
//! serves it, to the file named by its one argument (or to stdout), with
//! no server, database or configuration: `scripts/openapi-check` validates
//! what it writes.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let text = match jarvis_gateway::server::openapi_document().to_pretty_json() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("openapi: the document does not serialise: {e}");
            return ExitCode::FAILURE;
        }
    };
    let written = match std::env::args_os().nth(1) {
        Some(path) => std::fs::write(&path, text + "\n").map_err(|e| {
            format!(
                "cannot write {}: {e}",
                std::path::Path::new(&path).display()
            )
        }),
        None => writeln!(std::io::stdout(), "{text}").map_err(|e| e.to_string()),
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openapi: {e}");
            ExitCode::FAILURE
        }
    }
}

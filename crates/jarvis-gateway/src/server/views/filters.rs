//! The custom askama filters of the web UI templates.

use std::fmt::Display;

/// Makes untrusted text inert on screen with the one table every view
/// shares (`jarvis_core::text`): controls other than newline and tab and
/// the invisible formatting characters become visible stand-ins. HTML
/// escaping still happens after.
///
/// # Errors
/// Never; askama's filter signature requires a `Result`.
pub fn inert<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(jarvis_core::text::inert(&s.to_string()))
}

/// An RFC 3339 timestamp as `2025-11-23 01:57:03 UTC`.
///
/// # Errors
/// Never.
pub fn when<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(super::fmt_time(&s.to_string()))
}

/// JSON text pretty-printed (as it was if it is not JSON).
///
/// # Errors
/// Never.
pub fn pretty<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(super::pretty_json_text(&s.to_string()))
}

/// A JSON payload on one short line.
///
/// # Errors
/// Never.
pub fn summary<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(super::payload_summary(&s.to_string()))
}

/// An action id shortened to its first 13 characters (still unique
/// unless two actions share a millisecond; the store resolves prefixes).
///
/// # Errors
/// Never.
pub fn short<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(super::short_id(&s.to_string()))
}

/// A byte count as `512 B`, `1.5 KiB`, `3.2 MiB`.
///
/// # Errors
/// Never.
pub fn size<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    let n = s.to_string().parse::<u64>().unwrap_or(0);
    Ok(super::bytes_text(n))
}

/// An actor as the audit log stores it (`user:alice`,
/// `token:planner`) in words (`alice`, `agent token planner`), by
/// `jarvis_core::words::actor`.
///
/// # Errors
/// Never.
pub fn actor<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(jarvis_core::words::actor(&s.to_string()))
}

/// Milliseconds as `850 ms`, `12.3 s`, `2 min 05 s`.
///
/// # Errors
/// Never.
pub fn millis<T: Display>(s: T, _: &dyn askama::Values) -> askama::Result<String> {
    let n = s.to_string().parse::<u64>().unwrap_or(0);
    Ok(super::duration_text(n))
}

#[cfg(test)]
mod tests {
    use crate::server::views::fixtures::*;
    use crate::server::views::*;
    use jarvis_core::ActionState;
    use jarvis_store::ActionRecord;

    #[test]
    fn inert_filter_output_is_still_html_escaped() {
        let a = action(ActionState::Succeeded, "x");
        let mut page = action_page(ActionState::Succeeded, "x");
        page.action = ActionRecord {
            requester: "<img src=x>\u{202e}".into(),
            ..a
        };
        page.story = Story::of(&page.action, None);
        let html = render(&page);
        assert!(!html.contains("<img src=x>"));
        assert!(
            html.contains("&#60;img src=x&#62;\u{fffd}")
                || html.contains("&lt;img src=x&gt;\u{fffd}")
        );
    }

    #[test]
    fn a_hostile_command_renders_inert() {
        let cmd = "<script>alert(1)</script>\x1b[31mred";
        for html in [
            render(&QueuePage {
                chrome: chrome(Section::Queue),
                items: vec![item(cmd)],
                can_decide: true,
                now_unix: NOW,
                total_pending: 1,
                more: false,
            }),
            render(&action_page(ActionState::PendingApproval, cmd)),
            render(&QueueItems {
                items: vec![item(cmd)],
                can_decide: true,
                csrf: "t".into(),
                now_unix: NOW,
            }),
        ] {
            assert!(!html.contains("<script>"), "{html}");
            assert!(!html.contains("alert(1)</script>"), "{html}");
            assert!(!html.contains('\x1b'), "{html}");
            assert!(html.contains("\u{241b}[31mred"));
            assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
        }
    }
}

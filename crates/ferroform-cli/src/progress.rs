//! Progress during apply, Terraform-style: one line when a step starts, one when it ends with its time.

use ferroform_core::{Event, Reporter};
use std::io::Write;

pub(crate) fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub(crate) struct Progress {
    pub color: bool,
}

fn ing(action: &str) -> &'static str {
    match action {
        "create" => "Creating...",
        "update" => "Modifying...",
        "delete" => "Destroying...",
        _ => "Working...",
    }
}

fn done(action: &str) -> &'static str {
    match action {
        "create" => "Creation complete",
        "update" => "Modifications complete",
        "delete" => "Destruction complete",
        _ => "Complete",
    }
}

impl Reporter for Progress {
    fn event(&self, event: Event) {
        let line = match event {
            Event::Started { address, action } => format!("{}: {}", paint(self.color, "1", &address), ing(action)),
            Event::Finished { address, action, elapsed, id } => {
                let id = id.map(|i| format!(" [id={i}]")).unwrap_or_default();
                format!("{}: {} after {:.1}s{id}", paint(self.color, "1", &address), done(action), elapsed.as_secs_f64())
            }
            Event::Failed { address, action, error } => paint(self.color, "31", &format!("{address}: {action} failed: {error}")),
            Event::Note(n) => format!("note: {n}"),
        };
        let _ = writeln!(std::io::stderr(), "{line}");
    }
}

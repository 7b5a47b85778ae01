//! `--output table`: a report's form for people, as comfy-table draws it.

use comfy_table::{Table, presets};

use super::Human;

/// The text of `human`, empty for [`Human::Nothing`].
pub(super) fn render(human: &Human) -> String {
    match human {
        Human::Rows(rows) => {
            let mut table = new_table();
            for (key, value) in rows {
                table.add_row(vec![*key, value.as_str()]);
            }
            format!("{table}\n")
        }
        Human::Table { header, rows } => {
            let mut table = new_table();
            table.set_header(header.clone());
            for row in rows {
                table.add_row(row.clone());
            }
            format!("{table}\n")
        }
        Human::Text(text) => text.clone(),
        Human::Nothing => String::new(),
    }
}

/// Tables are never styled nor fitted to the terminal's width: the same
/// bytes on a terminal as in a pipe or a file, with no colour for `NO_COLOR`
/// to turn off.
fn new_table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED).force_no_tty();
    table
}

//! The man pages and the completion scripts, generated from the clap
//! definition: withings-token(1) and one withings-token-<sub>(1) per
//! subcommand clap knows (a new subcommand gets its page by being added to
//! `commands::Command`). `tests/cli/generated.rs` fails when the committed copies
//! under `man/` and `completions/` are stale, missing or left over. The
//! ENVIRONMENT section is the settings table (`settings::SETTINGS`).

use clap::Command;
use clap_complete::{Generator, Shell};
use clap_mangen::roff::{Roff, roman};

use crate::error::EXIT_STATUS_TABLE;

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-").replace('\'', "\\(aq")
}

/// The command line as the pages describe it: built, so that every
/// subcommand knows its page name (`withings-token-status`) and how it is
/// typed (`withings-token status`), and without clap's `help` subcommand,
/// which has no page.
fn documented_command() -> Command {
    let mut cmd = super::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// A subcommand that gets a page, and the pages above it (withings-token(1)
/// first), which its SEE ALSO names.
struct Documented<'a> {
    cmd: &'a Command,
    parents: Vec<&'a str>,
}

/// Every subcommand that gets a page, at any depth, parents first: all that
/// clap knows except hidden ones, so a command added to `cli::Command` gets
/// its page (and its test) without a change here.
fn documented_subcommands<'a>(cmd: &'a Command, above: &[&'a str]) -> Vec<Documented<'a>> {
    let parents: Vec<&str> = above.iter().copied().chain([page_name(cmd)]).collect();
    cmd.get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .flat_map(|sub| {
            let this = Documented {
                cmd: sub,
                parents: parents.clone(),
            };
            std::iter::once(this).chain(documented_subcommands(sub, &parents))
        })
        .collect()
}

/// A page's name, as `man` looks it up: `withings-token`, `withings-token-status`.
fn page_name(cmd: &Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// The file a page is committed as under `man/`.
fn file_name(cmd: &Command) -> String {
    format!("{}.1", page_name(cmd))
}

/// Every page under `man/`: (file name, page), withings-token(1) first,
/// then one page per subcommand. `tests/cli/generated.rs` fails when a
/// committed page is stale or missing, or when `man/` holds one more.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = documented_command();
    let mut pages = vec![(file_name(&root), main_page(&root)?)];
    for sub in documented_subcommands(&root, &[]) {
        pages.push((file_name(sub.cmd), subcommand_page(&root, &sub)?));
    }
    Ok(pages)
}

/// withings-token(1).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    main_page(&documented_command())
}

fn main_page(root: &Command) -> std::io::Result<Vec<u8>> {
    let help = AfterHelp::of(root);
    let man = clap_mangen::Man::new(root.clone());
    let mut page = Vec::new();
    render_head(&man, &help, &mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(crate::settings::settings_roff(escape).as_bytes());
    help.render_examples(&mut page)?;
    page.extend_from_slice(exit_status_section().as_bytes());
    let others: Vec<&str> = documented_subcommands(root, &[])
        .into_iter()
        .map(|sub| page_name(sub.cmd))
        .collect();
    page.extend_from_slice(see_also_section(&others).as_bytes());
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// Every page's head: title, NAME, SYNOPSIS, DESCRIPTION and the notes of
/// its after-help.
fn render_head(man: &clap_mangen::Man, help: &AfterHelp, page: &mut Vec<u8>) -> std::io::Result<()> {
    man.render_title(page)?;
    man.render_name_section(page)?;
    man.render_synopsis_section(page)?;
    man.render_description_section(page)?;
    help.render_notes(page)
}

/// `withings-token-<sub>(1)`: NAME and SYNOPSIS as typed
/// (`withings-token status ...`), the subcommand's own options, a pointer
/// to the global ones, its examples, the exit statuses and SEE ALSO.
fn subcommand_page(root: &Command, sub: &Documented<'_>) -> std::io::Result<Vec<u8>> {
    let help = AfterHelp::of(sub.cmd);
    // The global options are listed once, in withings-token(1); here they
    // would bury the subcommand's own in its SYNOPSIS and OPTIONS.
    let own = sub
        .cmd
        .clone()
        .mut_args(|arg| if arg.is_global_set() { arg.hide(true) } else { arg });
    let source = format!("{} {}", root.get_name(), root.get_version().unwrap_or_default());
    let man = clap_mangen::Man::new(own.clone()).source(source);
    let mut page = Vec::new();
    render_head(&man, &help, &mut page)?;
    if own.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    page.extend_from_slice(global_options_section(root).as_bytes());
    if own.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    help.render_examples(&mut page)?;
    page.extend_from_slice(exit_status_section().as_bytes());
    page.extend_from_slice(see_also_section(&sub.parents).as_bytes());
    Ok(page)
}

/// A subcommand page's pointer to the options every command accepts.
fn global_options_section(root: &Command) -> String {
    let flags: Vec<String> = root
        .get_arguments()
        .filter(|arg| arg.is_global_set() && !arg.is_hide_set())
        .filter_map(|arg| arg.get_long())
        .map(|long| format!("\\fB\\-\\-{}\\fR", escape(long)))
        .collect();
    format!(
        ".SH \"GLOBAL OPTIONS\"\nThe options of \\fB{}\\fR(1) are accepted before or after the subcommand: {}.\n",
        escape(page_name(root)),
        flags.join(", ")
    )
}

fn exit_status_section() -> String {
    let mut section = String::from(".SH \"EXIT STATUS\"\n");
    for row in EXIT_STATUS_TABLE {
        section.push_str(&format!(
            ".TP\n\\fB{}\\fR {}\n{}\n",
            row.exit,
            escape(row.codes),
            escape(row.meaning)
        ));
    }
    section
}

fn see_also_section(pages: &[&str]) -> String {
    let mut section = String::from(".SH \"SEE ALSO\"\n");
    for (i, page) in pages.iter().enumerate() {
        let comma = if i + 1 < pages.len() { "," } else { "" };
        // `\%`: a page name is never hyphenated across lines.
        section.push_str(&format!(".BR \\%{} (1){comma}\n", escape(page)));
    }
    section
}

/// A command's `after_help`, as its page shows it: the `Examples:` block
/// (which ends every subcommand's help, as `commands/parse/tests.rs` checks)
/// becomes the EXAMPLES section, every other paragraph ends the DESCRIPTION.
struct AfterHelp {
    notes: Vec<String>,
    examples: Vec<String>,
}

impl AfterHelp {
    fn of(cmd: &Command) -> AfterHelp {
        let text = cmd
            .get_after_long_help()
            .or_else(|| cmd.get_after_help())
            .map(|help| help.to_string())
            .unwrap_or_default();
        let mut help = AfterHelp {
            notes: Vec::new(),
            examples: Vec::new(),
        };
        for paragraph in text.split("\n\n") {
            match paragraph.strip_prefix("Examples:\n") {
                Some(examples) => help.examples.extend(examples.lines().map(|l| l.trim().to_owned())),
                None => help
                    .notes
                    .extend(paragraph.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned)),
            }
        }
        help
    }

    /// One paragraph per line, as the help breaks them.
    fn render_notes(&self, page: &mut Vec<u8>) -> std::io::Result<()> {
        if self.notes.is_empty() {
            return Ok(());
        }
        let mut roff = Roff::new();
        for line in &self.notes {
            roff.control("PP", []).text([roman(line.as_str())]);
        }
        roff.to_writer(page)
    }

    /// The examples verbatim, one command per line.
    fn render_examples(&self, page: &mut Vec<u8>) -> std::io::Result<()> {
        if self.examples.is_empty() {
            return Ok(());
        }
        let mut roff = Roff::new();
        roff.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in &self.examples {
            roff.text([roman(line.as_str())]);
        }
        roff.control("fi", []);
        roff.to_writer(page)
    }
}

/// (file name under `completions/`, script) for each shell we ship.
pub fn completion_scripts() -> Vec<(String, Vec<u8>)> {
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            let mut script = Vec::new();
            let mut cmd = super::command();
            clap_complete::generate(shell, &mut cmd, "withings-token", &mut script);
            (shell.file_name("withings-token"), script)
        })
        .collect()
}

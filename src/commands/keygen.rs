//! `keygen`: a new age identity written to a file of its own, its
//! recipient printed. Offline; reads no setting but where the default file
//! is.

use std::path::PathBuf;

use clap::Args;

use crate::cli::OutputFlag;
use crate::error::{Error, Result, Status};
use crate::output::{JSON_VERSION, KeygenReport, Output};

/// Make a new age identity (the private key an encrypted store is opened with) and print its recipient
#[derive(Debug, Args)]
#[command(
    after_help = "Writes the identity (AGE-SECRET-KEY-1…, in the format `age-keygen` writes) to FILE, mode 600, its \
directory made 700 when missing; never over an existing file (exit 3: remove it first, or choose another with \
`--output`). Prints the recipient (age1…, the public key) alone on stdout; where the identity went and what to do \
next, on stderr. The identity itself is never printed.\n\
Under `keygen`, `-o`/`--output` names the identity file (as `age-keygen -o`), not the output format; `--json` gives \
JSON (`recipient`, `identity_file`) with the default file.\n\
The default file is the one read when no other identity is given (`--identity`, WITHINGS_TOKEN_IDENTITY, \
WITHINGS_TOKEN_IDENTITY_FILE, a systemd credential). Keep a copy of it somewhere safe: a store encrypted to it alone \
cannot be read without it.\n\n\
Examples:\n  withings-token keygen                                   # identity.txt beside the config file\n  export WITHINGS_TOKEN_RECIPIENTS=\"$(withings-token keygen)\" && withings-token rekey\n  withings-token keygen --output /etc/withings-token/identity.txt > recipient.txt"
)]
pub struct KeygenArgs {
    /// Write the identity to FILE (never over an existing one) [default: identity.txt beside the config file, e.g. ~/.config/withings-token/identity.txt]
    #[arg(id = "output", short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath,
          value_parser = clap::builder::TypedValueParser::map(clap::builder::PathBufValueParser::new(), OutputFlag::File))]
    pub output: Option<OutputFlag>,
}

pub fn run(args: &KeygenArgs, out: &Output) -> Result<Status> {
    let (path, by_default) = match &args.output {
        Some(OutputFlag::File(path)) if is_a_misread_flag(path) => {
            return Err(Error::config(
                format!(
                    "`keygen --output {}` would write the private key to a file named `{}`; nothing was written",
                    path.display(),
                    path.display()
                ),
                "give a path (`--output ./keys/identity.txt`); the recipient always goes to stdout, and `--json` asks for JSON",
            ));
        }
        Some(OutputFlag::File(path)) => (path.clone(), false),
        // `-o FORMAT` before `keygen` is the output format.
        Some(OutputFlag::Format(_)) | None => (default_file()?, true),
    };
    let recipient = crate::sealing::identities::write_new_identity(&path, crate::tokens::now())?;
    let shown = path.display();
    let read_by = if by_default {
        "it is read by default when no other identity is given".to_owned()
    } else {
        format!("give it to the runs that open the store: `--identity {shown}` or WITHINGS_TOKEN_IDENTITY_FILE={shown}")
    };
    out.print(&KeygenReport {
        version: JSON_VERSION,
        identity_file: shown.to_string(),
        next: format!(
            "wrote a new identity (private key) to {shown} (mode 600); {read_by}; keep a copy somewhere safe: what is encrypted to it alone cannot be read without it\n  next: encrypt to it: set WITHINGS_TOKEN_RECIPIENTS={recipient} (or `encrypt_to` in the config file), then run `withings-token rekey`"
        ),
        recipient,
    })?;
    Ok(Status::Success)
}

/// `-` (stdout, elsewhere) and the format names (`-o json`, as for every
/// other command) are not files anyone means to keep a key in.
fn is_a_misread_flag(path: &std::path::Path) -> bool {
    ["-", "json", "table", "env"]
        .iter()
        .any(|word| path.as_os_str() == *word)
}

fn default_file() -> Result<PathBuf> {
    crate::settings::default_identity_file().ok_or_else(|| {
        Error::config(
            "there is no default place for the identity: neither HOME nor XDG_CONFIG_HOME is set; nothing was written",
            "choose the file: `withings-token keygen --output FILE`",
        )
    })
}

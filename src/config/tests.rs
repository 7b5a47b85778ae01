use super::*;
use crate::budget::Rate;

fn parsed(text: &str) -> Config {
    Config::parse(PathBuf::from("/etc/wt/config.toml"), ConfigOrigin::Flag, text).unwrap()
}

/// The message of the error parsing `text` gives.
fn refused(text: &str) -> String {
    let err = Config::parse(PathBuf::from("/etc/wt/config.toml"), ConfigOrigin::Flag, text)
        .err()
        .unwrap();
    assert_eq!(err.code(), "CONFIGURATION_ERROR");
    err.to_string()
}

fn name(text: &str) -> AccountName {
    AccountName::parse(text).unwrap()
}

const EXAMPLE: &str = r#"# top level: what the whole deployment shares
client_id = "cid-1"
store = "tokens.json"
upstream_budget = 60
buffer = "3h"

[account.alice]              # what differs per account
env_file = "/srv/alice/.env"
variable_prefix = "ALICE_"
buffer = "1h"

[reader.mcp-alice]
sha256 = "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789"
accounts = ["alice"]

[reader.home]
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
accounts = ["*", "bob"]
budget = "30/min"
"#;

#[test]
fn a_value_is_the_account_tables_else_the_tops_with_its_line() {
    let config = parsed(EXAMPLE);
    let alice = name("alice");
    let (buffer, place) = config.value("WITHINGS_REFRESH_BUFFER", Some(&alice)).unwrap();
    assert_eq!((buffer, place.line, place.account), ("1h", 10, Some(alice.clone())));
    let (buffer, place) = config.value("WITHINGS_REFRESH_BUFFER", Some(&name("bob"))).unwrap();
    assert_eq!((buffer, place.line, place.account), ("3h", 5, None));
    let (budget, _) = config.value("WITHINGS_TOKEN_UPSTREAM_BUDGET", None).unwrap();
    assert_eq!(budget, "60", "an integer is the setting's text");
    assert!(config.value("WITHINGS_CLIENT_SECRET", Some(&alice)).is_none());
    let table = config.account(&alice).unwrap();
    assert_eq!(table.variable_prefix, Some(("ALICE_".to_owned(), 9)));
}

#[test]
fn a_relative_store_or_env_file_is_taken_from_the_files_directory() {
    let config = parsed("store = \"tokens.json\"\nenv_file = \".env\"\n[account.a]\nenv_file = \"/abs/.env\"\n");
    assert_eq!(
        config.value("WITHINGS_TOKEN_STORE", None).unwrap().0,
        "/etc/wt/tokens.json"
    );
    assert_eq!(config.value("WITHINGS_ENV_FILE", None).unwrap().0, "/etc/wt/.env");
    assert_eq!(
        config.value("WITHINGS_ENV_FILE", Some(&name("a"))).unwrap().0,
        "/abs/.env"
    );
    let redis = parsed("store = \"redis://h:6379/0\"\n");
    assert_eq!(redis.value("WITHINGS_TOKEN_STORE", None).unwrap().0, "redis://h:6379/0");
}

#[test]
fn readers_have_a_lower_case_digest_and_their_accounts_or_every_account() {
    let config = parsed(EXAMPLE);
    assert_eq!(
        config.readers,
        [
            ReaderGrant {
                name: "mcp-alice".to_owned(),
                sha256: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".to_owned(),
                accounts: vec![name("alice")],
                all_accounts: false,
                budget: None,
            },
            ReaderGrant {
                name: "home".to_owned(),
                sha256: "0".repeat(64),
                accounts: vec![name("bob")],
                all_accounts: true,
                budget: Some(Rate::per_minute(30)),
            },
        ]
    );
}

#[test]
fn an_unknown_key_or_table_is_named_with_its_line() {
    assert_eq!(
        refused("client_id = \"x\"\n\n[account.alice]\nbuffer = \"1h\"\n\n\nbufer = \"2h\"\n"),
        "/etc/wt/config.toml:7: unknown key `bufer` in [account.alice]"
    );
    assert_eq!(
        refused("# c\nclient_idd = \"x\"\n"),
        "/etc/wt/config.toml:2: unknown key `client_idd` at the top of the file"
    );
    assert_eq!(
        refused("[acount.alice]\nbuffer = \"1h\"\n"),
        "/etc/wt/config.toml:1: unknown table `acount` at the top of the file"
    );
    assert_eq!(
        refused(&format!("[reader.r]\nsha256 = \"{}\"\naccount = []\n", "0".repeat(64))),
        "/etc/wt/config.toml:3: unknown key `account` in [reader.r]"
    );
    assert_eq!(
        refused("[account.alice]\nrefresh_token = \"r\"\n"),
        "/etc/wt/config.toml:2: unknown key `refresh_token` in [account.alice]",
        "a seed token rotates: never a config key"
    );
}

#[test]
fn a_wrong_type_a_bad_value_or_a_shared_key_per_account_is_refused_with_its_line() {
    assert_eq!(
        refused("buffer = 3.5\n"),
        "/etc/wt/config.toml:1: `buffer` at the top of the file must be a string, not a number with a fraction"
    );
    assert_eq!(
        refused("\n[account.a]\njitter = true\n"),
        "/etc/wt/config.toml:3: `jitter` in [account.a] must be a string, not a boolean"
    );
    assert_eq!(
        refused("upstream_budget = 0\n"),
        "/etc/wt/config.toml:1: `upstream_budget` at the top of the file: `0` is not a number from 1 to 10000000"
    );
    assert_eq!(
        refused("[account.a]\nrefresh_at_least = \"400d\"\n"),
        "/etc/wt/config.toml:2: `refresh_at_least` in [account.a]: `400d` is not `0s` or a duration from 1h to 300d"
    );
    assert_eq!(
        refused("region = \"mars\"\n"),
        "/etc/wt/config.toml:1: `region` at the top of the file: must be `eu` or `us`"
    );
    assert_eq!(
        refused("[account.a]\nclient_id = \"x\"\n"),
        "/etc/wt/config.toml:2: `client_id` cannot be set per account (in [account.a]): every account of the deployment shares it"
    );
    assert_eq!(
        refused("client_id = \"a\\nb\"\n"),
        "/etc/wt/config.toml:1: `client_id` at the top of the file holds a control character (such as a line break)"
    );
    assert_eq!(
        refused("[account.a]\nvariable_prefix = \"A-\"\n"),
        "/etc/wt/config.toml:2: `variable_prefix` in [account.a] is not a variable prefix: `A-`"
    );
}

#[test]
fn a_reader_s_budget_is_a_count_a_minute_or_an_hour() {
    let with = |budget: &str| {
        let digest = "0".repeat(64);
        format!("[reader.r]\nsha256 = \"{digest}\"\naccounts = [\"a\"]\nbudget = {budget}\n")
    };
    let hourly = parsed(&with("\"500/hour\""));
    assert_eq!(
        hourly.readers[0].budget,
        Some(Rate {
            count: 500,
            period: std::time::Duration::from_secs(3600)
        })
    );
    assert_eq!(
        parsed(&with("\"2 / minute\"")).readers[0].budget,
        Some(Rate::per_minute(2))
    );
    for (bad, why) in [
        ("\"0/min\"", "`0` is not a number from 1 to 10000000"),
        ("\"lots/min\"", "`lots` is not a number from 1 to 10000000"),
        ("\"30/day\"", "`day` is not `min` or `hour`"),
        ("\"30\"", "`30` is not a number of requests per minute or hour"),
        ("30", "must be a string, like \"30/min\""),
    ] {
        assert_eq!(
            refused(&with(bad)),
            format!("/etc/wt/config.toml:4: `budget` in [reader.r]: {why}"),
            "{bad}"
        );
    }
}

#[test]
fn bad_tables_names_and_readers_are_refused_with_their_line() {
    assert_eq!(
        refused("client_id = \"x\"\n[account.\"al ice\"]\n"),
        "/etc/wt/config.toml:2: [account.al ice]: `al ice` is not an account name"
    );
    assert_eq!(
        refused("account = \"alice\"\n"),
        "/etc/wt/config.toml:1: `account` must hold [account.NAME] tables"
    );
    assert_eq!(
        refused("[reader.r]\nsha256 = \"abc\"\naccounts = [\"a\"]\n"),
        "/etc/wt/config.toml:2: `sha256` in [reader.r] is not 64 hex digits"
    );
    let digest = "0".repeat(64);
    assert_eq!(
        refused(&format!("[reader.r]\nsha256 = \"{digest}\"\n")),
        "/etc/wt/config.toml:1: [reader.r] has no `accounts`"
    );
    assert_eq!(
        refused(&format!(
            "[reader.r]\nsha256 = \"{digest}\"\naccounts = [\n  \"a\",\n  \"b c\",\n]\n"
        )),
        "/etc/wt/config.toml:5: `accounts` in [reader.r]: `b c` is not an account name"
    );
    assert_eq!(
        refused("client_id = \"x\n"),
        "/etc/wt/config.toml:1: not valid TOML: invalid basic string, expected `\"`"
    );
    assert_eq!(
        refused("client_id = \"a\"\n\nclient_id = \"b\"\n"),
        "/etc/wt/config.toml:3: not valid TOML: duplicate key"
    );
}

#[test]
fn the_default_file_is_under_the_config_directory() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    };
    let xdg = env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
    assert_eq!(default_path(&xdg), Some(PathBuf::from("/x/withings-token/config.toml")));
    let relative = env(&[("XDG_CONFIG_HOME", "x"), ("HOME", "/h")]);
    assert_eq!(
        default_path(&relative),
        Some(PathBuf::from("/h/.config/withings-token/config.toml"))
    );
    assert_eq!(default_path(&env(&[])), None);
}

#[test]
fn a_missing_default_file_is_no_config_and_a_missing_named_one_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_string_lossy().into_owned();
    let process = move |name: &str| (name == "HOME").then(|| home.clone());
    assert!(Config::find(None, &process).unwrap().is_none());
    let missing = dir.path().join("nope.toml");
    let err = Config::find(Some(&missing), &process).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("cannot read config file {}: no such file", missing.display())
    );
    assert_eq!(err.action(), "fix the path given with `--config`");
}

// ---------------------------------------------------------------------------
// Rewriting: rename and remove

const COMMENTED: &str = r#"# The household's deployment.
client_id = "cid-1"   # the app

# Alice, upstairs.
[account.alice]
buffer = "1h"   # she travels
jitter = "5m"

# Bob.
[account.bob]
buffer = "2h"

[reader.mcp]   # her MCP server
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
accounts = ["bob", "alice"]   # both, for now
"#;

fn config_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn rename_moves_the_table_and_the_readers_name_keeping_every_comment_and_the_mode() {
    let (_dir, path) = config_file(COMMENTED, 0o640);
    assert!(rename_account(&path, &name("alice"), &name("carol")).unwrap());
    let expected = COMMENTED
        .replace("[account.alice]", "[account.carol]")
        .replace("\"alice\"]", "\"carol\"]");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(mode_of(&path), 0o640);
    let config = Config::parse(path.clone(), ConfigOrigin::Flag, &expected).unwrap();
    assert_eq!(
        config.value("WITHINGS_REFRESH_BUFFER", Some(&name("carol"))).unwrap().0,
        "1h"
    );
}

#[test]
fn rename_onto_a_name_with_a_table_is_refused_and_the_file_left_as_it_was() {
    let (_dir, path) = config_file(COMMENTED, 0o600);
    let err = rename_account(&path, &name("alice"), &name("bob")).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("config file {} already has an [account.bob] table", path.display())
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), COMMENTED);
}

#[test]
fn rename_or_remove_of_an_account_without_a_table_still_fixes_the_readers() {
    let text = "[reader.r]\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\naccounts = [\"dan\"]\n";
    let (_dir, path) = config_file(text, 0o600);
    assert!(!rename_account(&path, &name("dan"), &name("erin")).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text.replace("dan", "erin"));
    assert!(!remove_account(&path, &name("zed")).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text.replace("dan", "erin"));
}

#[test]
fn remove_drops_the_table_and_the_readers_name_keeping_the_rest_byte_for_byte() {
    let (_dir, path) = config_file(COMMENTED, 0o600);
    assert!(remove_account(&path, &name("alice")).unwrap());
    let expected = COMMENTED
        .replace(
            "# Alice, upstairs.\n[account.alice]\nbuffer = \"1h\"   # she travels\njitter = \"5m\"\n\n",
            "",
        )
        .replace("[\"bob\", \"alice\"]", "[\"bob\"]");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
}

#[test]
fn an_invalid_file_is_not_rewritten() {
    let text = "client_id = \"x\"\nbufer = \"1h\"\n[account.alice]\n";
    let (_dir, path) = config_file(text, 0o600);
    let err = remove_account(&path, &name("alice")).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("{}:2: unknown key `bufer` at the top of the file", path.display())
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn no_two_accounts_write_their_copies_under_the_same_names() {
    assert_eq!(
        refused("[account.alice]\nvariable_prefix = \"BOB_\"\n[account.bob]\nbuffer = \"1h\"\n"),
        "/etc/wt/config.toml:3: [account.bob] would write its copies under the variable names of account alice (prefix `BOB_`)"
    );
    assert_eq!(
        refused("[account.alice]\nvariable_prefix = \"\"\n"),
        "/etc/wt/config.toml:2: [account.alice] would write its copies under the variable names of account default (prefix ``)"
    );
    assert_eq!(
        refused("[account.a]\nvariable_prefix = \"X_\"\n[account.b]\nvariable_prefix = \"X_\"\n"),
        "/etc/wt/config.toml:4: [account.b] would write its copies under the variable names of account a (prefix `X_`)"
    );
    // `default` may give its names away, and then another may take them.
    let config = parsed("[account.default]\nvariable_prefix = \"HOME_\"\n[account.alice]\nvariable_prefix = \"\"\n");
    assert_eq!(config.prefix_owner(""), Some(&name("alice")));
    assert_eq!(config.prefix_owner("HOME_"), Some(&name("default")));
    assert_eq!(
        parsed("[account.alice]\nvariable_prefix = \"MCP_ALICE_\"\n").prefix_owner("ALICE_"),
        None
    );
}

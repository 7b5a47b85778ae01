# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_withings_token_global_optspecs
    string join \n env-file= no-env-file config= store= account= store-key= o/output= output-env json reveal q/quiet v/verbose log-format= timeout= retries= retry-delay= server= region= lock-timeout= upstream-budget= on-event= webhook-url= ping-url= notify-timeout= encrypt-to= identity= allow-plaintext h/help V/version
end

function __fish_withings_token_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_withings_token_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_withings_token_using_subcommand
    set -l cmd (__fish_withings_token_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c withings-token -n "__fish_withings_token_needs_command" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_needs_command" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_needs_command" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_needs_command" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_needs_command" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_needs_command" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_needs_command" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_needs_command" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_needs_command" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_needs_command" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_needs_command" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_needs_command" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_needs_command" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_needs_command" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_needs_command" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c withings-token -n "__fish_withings_token_needs_command" -s V -l version -d 'Print version'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "status" -d 'Report the stored token set without touching the network'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "refresh" -d 'Refresh the tokens: rotate, save to the store, update the env file and Railway'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "auth-url" -d 'Print the Withings authorization URL to open in a browser'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "exchange" -d 'Trade an authorization code (or the whole redirect URL) for tokens'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "login" -d 'Log in from this machine: open the consent page, catch the redirect on loopback, store the tokens'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "railway-sync" -d 'Push the stored tokens to the Railway service without refreshing'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "pull" -d 'Import the token set from the Railway service when it is newer than the store\'s'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "export" -d 'Print the stored token set as the four env lines (prints secrets, unless encrypted with --encrypt-to)'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "import" -d 'Put an export (plain, or encrypted by `export --encrypt-to`) into the store, unless the store\'s set is newer'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "access-token" -d 'Print the access token, refreshing first when it expires soon (prints a secret)'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "exec" -d 'Run a command with a fresh access token in its environment (passes a secret)'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "api" -d 'Call Withings\' data API (e.g. getmeas) and print its JSON answer'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "validate" -d 'Check with Withings that the stored access token works'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "doctor" -d 'Check the setup: settings, URLs, the store, the tokens, Railway (offline; --online also asks Withings and Railway)'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "serve" -d 'Run as a service: the admin API, a token broker and a background refresh'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "sandbox" -d 'Serve an emulation of Withings (and Railway) on loopback for trying the tool'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "demo" -d 'Run the whole flow against an in-process sandbox in a throw-away store'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "accounts" -d 'List the accounts (one Withings user each) with their expiry, refresh-token age, stale copies and state; rename or remove one'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "notify" -d 'Send a test event to every event sink (commands, webhooks) and report how each took it'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "keygen" -d 'Make a new age identity (the private key an encrypted store is opened with) and print its recipient'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "rekey" -d 'Encrypt every account\'s store again to the recipients configured now (add or remove a key), under each one\'s lock'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "usage" -d 'Show each consumer\'s calls through a running `serve`\'s Withings proxy (last hour, last day; needs --server)'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "health" -d 'Ask a running `serve` whether it is healthy (GET /health; needs --server)'
complete -c withings-token -n "__fish_withings_token_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l buffer -d 'How long before expiry a refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l check -d 'Exit 7 (REFRESH_DUE) when a refresh is due or the token expired; 4 (INVALID_REFRESH_TOKEN) when the account needs new consent'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand status" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l buffer -d 'How long before expiry a refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l if-needed -d 'Refresh only when `status` would say a refresh is due; otherwise exit 0 and say why'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l dry-run -d 'Decide and report what a refresh would do; send nothing, write nothing'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l all -d 'Every account in turn, each under its own lock; exit: the most serious account\'s (not with --account, --server)'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand refresh" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l state -d 'Use this state instead of a random one' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l demo-account -d 'Open Withings\' demo account instead of a real one (`mode=demo`)'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand auth-url" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l replace -d 'Save the set even when it is another Withings user\'s than the account holds, or one another account holds (says what it replaced)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exchange" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l port -d 'Loopback port to listen on [default: the port of a loopback WITHINGS_REDIRECT_URI, else 8585]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l wait -d 'How long to wait for the browser to come back (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l no-browser -d 'Do not open a browser; only print the URL to open'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l demo-account -d 'Open Withings\' demo account instead of a real one (`mode=demo`)'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l replace -d 'Save the set even when it is another Withings user\'s than the account holds, or one another account holds (says what it replaced)'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand login" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l dry-run -d 'Show which variables would change (values masked); send no mutation'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l check -d 'Compare Railway\'s variables with the store and send nothing: exit 0 when they agree, 8 (DRIFT) when one differs or is missing'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l trigger-deployment -d 'After updating the variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand railway-sync" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l from -d 'Where the set comes from' -r -f -a "railway\t'The four `WITHINGS_*` token variables of the Railway service'"
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l force -d 'Import even when the store\'s set is as new or newer (a warning says what was replaced)'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand export" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand import" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l min-ttl -d 'Refresh first when the access token has less than this left, at most 366d (and at most half the token\'s lifetime: a longer one is capped, with a warning)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand access-token" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l min-ttl -d 'Refresh first when the access token has less than this left, at most 366d' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand exec" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l method -d 'The HTTP method: POST (Withings\' way) or GET (the form in the query)' -r -f -a "GET\t''
POST\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand api" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l refresh-if-invalid -d 'When the token is refused, refresh once (as `refresh` does) and validate the new one'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l no-env-file-update -d 'Do not rewrite the token keys of the env file'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l no-railway -d 'Do not push the new tokens to Railway (the token is still rotated)'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l trigger-deployment -d 'After updating Railway\'s variables, redeploy the service once'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand validate" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l online -d 'Also ask Withings (reachable, clock) and Railway (token, ids, which set it holds); sends no token of the account'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l listen -d 'Address to listen on, IP:PORT [default: 127.0.0.1:8080, or 0.0.0.0:$PORT when PORT is set]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l check-interval -d 'How often the store is checked for a refresh that is due, from 100ms to 1h' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l buffer -d 'How long before expiry the background refresh is due, at most 366d [env: WITHINGS_REFRESH_BUFFER] [default: min(24h, lifetime/3)]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l max-connections -d 'The most connections served at once; beyond it, the oldest that has not sent a whole request head is closed, or a new one waits [default: 1024, fewer when the open-files limit leaves 64 free for the store and Withings]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l max-connections-per-ip -d 'The most connections one address (an IPv4 address, an IPv6 /64) holds; beyond it, its oldest that has not sent a whole request head is closed [default: a quarter of --max-connections; behind a proxy, where every connection comes from it, set it to --max-connections]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l header-timeout -d 'Close a connection that has not sent a whole request head within this time (a kept-alive one too, between requests), or whose answer makes no progress for as long, from 100ms to 10s' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l proxy-timeout -d 'How long a call through the Withings proxy (/v1/withings/PATH) may take, answer included, from 100ms to 10m; no answer head within it: 504' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l proxy-max-bytes -d 'The largest answer the Withings proxy passes back, in bytes (32 MiB by default); one announced larger: 502 ANSWER_TOO_LARGE, one that grows larger is cut' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l metrics-auth -d 'Ask for `X-Admin-Token` on GET /metrics too (open by default: it holds no token)'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand serve" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l listen -d 'Loopback address to listen on (port 0 picks a free one)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l expires-in -d 'How long the access tokens it issues live (`expires_in`), from 1s: short ones make `serve` rotate often (a soak test)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand sandbox" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand demo" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand completions" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -f -a "rename" -d 'Give an account another name (its store moves; nothing is sent)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -f -a "remove" -d 'Delete an account\'s local token set (the consent at Withings remains)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and not __fish_seen_subcommand_from rename remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from rename" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l yes -d 'Remove it: without this flag, say what would be removed and exit 2'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "rename" -d 'Give an account another name (its store moves; nothing is sent)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Delete an account\'s local token set (the consent at Withings remains)'
complete -c withings-token -n "__fish_withings_token_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l test -d 'Send one `test` event to every command and webhook, and show how each took it'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l ping -d 'Send one success ping to every dead-man URL (`--ping-url`; it tells the check a run went well), and show how each took it'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand notify" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -s o -l output -d 'Write the identity to FILE (never over an existing one) [default: identity.txt beside the config file, e.g. ~/.config/withings-token/identity.txt]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand rekey" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand usage" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l env-file -d 'Read settings from this env file [env: WITHINGS_ENV_FILE] [default: ./.env when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l config -d 'Read settings from this config file (TOML: the deployment\'s at the top, each account\'s in [account.NAME]) [env: WITHINGS_TOKEN_CONFIG] [default: $XDG_CONFIG_HOME/withings-token/config.toml when it exists]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l store -d 'Token store: a file path, or redis://[:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS) shared by many hosts [env: WITHINGS_TOKEN_STORE] [default: $XDG_STATE_HOME/withings-token/tokens.json]' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l account -d 'The account to act on: one Withings user of the app, by name [env: WITHINGS_TOKEN_ACCOUNT] [default: the only one in the store]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l store-key -d 'Redis key of the token set (with a Redis --store) [env: WITHINGS_TOKEN_STORE_KEY] [default: withings-token:<WITHINGS_CLIENT_ID>:tokens]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
env\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l log-format -d 'Log line format on stderr [default: text; json under `serve`]' -r -f -a "text\t''
json\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l timeout -d 'Time limit for each HTTP request, e.g. 30s, 500ms, 2m (more than 0, at most 1h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l retries -d 'Extra attempts after a retryable failure (5xx, timeout, rate limit, garbled answer; at most 10)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l retry-delay -d 'First pause between attempts; doubles each time (0s allowed, at most 5m)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l server -d 'Drive a running `withings-token serve` at URL instead of Withings and the local store (status, refresh, auth-url, exchange, usage with ADMIN_API_TOKEN; access-token, exec with WITHINGS_TOKEN_READER_TOKEN or ADMIN_API_TOKEN; other commands refuse it) [env: WITHINGS_TOKEN_SERVER]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l region -d 'Withings hosts: eu (wbsapi.withings.net) or us (the withingsmed HIPAA hosts); explicit URLs win [env: WITHINGS_REGION] [default: eu]' -r -f -a "eu\t''
us\t''"
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l lock-timeout -d 'How long to wait for another withings-token process holding the store lock (0s: do not wait; at most 24h)' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l upstream-budget -d 'Requests a minute this app may send to Withings, shared by every refresh and every call `serve` proxies, of this process and, with a Redis store, of every host (1 to 10000000); one over it waits up to 5s or fails with RATE_LIMITED, nothing sent [env: WITHINGS_TOKEN_UPSTREAM_BUDGET] [default: 120]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l on-event -d 'Run CMD (`sh -c`) for every event, the event as JSON on stdin; may be given again [env: WITHINGS_TOKEN_ON_EVENT]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l webhook-url -d 'POST every event to URL (signed with WITHINGS_TOKEN_WEBHOOK_SECRET); may be given again [env: WITHINGS_TOKEN_WEBHOOK_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l ping-url -d 'Dead-man ping: URL/start, then URL on success or URL/fail (healthchecks.io); may be given again [env: WITHINGS_TOKEN_PING_URL]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l notify-timeout -d 'Wait at most this long for event deliveries before exiting (at most 2m; never changes the exit code) [env: WITHINGS_TOKEN_NOTIFY_TIMEOUT] [default: 5s]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l encrypt-to -d 'Encrypt the store to this age recipient (age1…); may be given again [env: WITHINGS_TOKEN_RECIPIENTS]' -r
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l identity -d 'Read age identities (private keys) from FILE to open an encrypted store; may be given again, and is tried beside WITHINGS_TOKEN_IDENTITY_FILE, WITHINGS_TOKEN_IDENTITY and a systemd credential' -r -F
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l no-env-file -d 'Read no env file at all'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l output-env -d 'Same as `--output env` (prints tokens unmasked)'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l json -d 'Same as `--output json`'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l reveal -d 'Show tokens unmasked in table and JSON output'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -s q -l quiet -d 'Print only errors on stderr'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -s v -l verbose -d 'More log detail on stderr (-v info, -vv debug, -vvv trace); tokens are never logged'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -l allow-plaintext -d 'Let a store that was encrypted be written plain (no recipient configured)'
complete -c withings-token -n "__fish_withings_token_using_subcommand health" -s h -l help -d 'Print help'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "status" -d 'Report the stored token set without touching the network'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "refresh" -d 'Refresh the tokens: rotate, save to the store, update the env file and Railway'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "auth-url" -d 'Print the Withings authorization URL to open in a browser'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "exchange" -d 'Trade an authorization code (or the whole redirect URL) for tokens'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "login" -d 'Log in from this machine: open the consent page, catch the redirect on loopback, store the tokens'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "railway-sync" -d 'Push the stored tokens to the Railway service without refreshing'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "pull" -d 'Import the token set from the Railway service when it is newer than the store\'s'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "export" -d 'Print the stored token set as the four env lines (prints secrets, unless encrypted with --encrypt-to)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "import" -d 'Put an export (plain, or encrypted by `export --encrypt-to`) into the store, unless the store\'s set is newer'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "access-token" -d 'Print the access token, refreshing first when it expires soon (prints a secret)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "exec" -d 'Run a command with a fresh access token in its environment (passes a secret)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "api" -d 'Call Withings\' data API (e.g. getmeas) and print its JSON answer'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "validate" -d 'Check with Withings that the stored access token works'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "doctor" -d 'Check the setup: settings, URLs, the store, the tokens, Railway (offline; --online also asks Withings and Railway)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "serve" -d 'Run as a service: the admin API, a token broker and a background refresh'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "sandbox" -d 'Serve an emulation of Withings (and Railway) on loopback for trying the tool'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "demo" -d 'Run the whole flow against an in-process sandbox in a throw-away store'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "completions" -d 'Print a shell completion script'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "accounts" -d 'List the accounts (one Withings user each) with their expiry, refresh-token age, stale copies and state; rename or remove one'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "notify" -d 'Send a test event to every event sink (commands, webhooks) and report how each took it'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "keygen" -d 'Make a new age identity (the private key an encrypted store is opened with) and print its recipient'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "rekey" -d 'Encrypt every account\'s store again to the recipients configured now (add or remove a key), under each one\'s lock'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "usage" -d 'Show each consumer\'s calls through a running `serve`\'s Withings proxy (last hour, last day; needs --server)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "health" -d 'Ask a running `serve` whether it is healthy (GET /health; needs --server)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and not __fish_seen_subcommand_from status refresh auth-url exchange login railway-sync pull export import access-token exec api validate doctor serve sandbox demo completions accounts notify keygen rekey usage health help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "rename" -d 'Give an account another name (its store moves; nothing is sent)'
complete -c withings-token -n "__fish_withings_token_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "remove" -d 'Delete an account\'s local token set (the consent at Withings remains)'

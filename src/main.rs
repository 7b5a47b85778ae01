fn main() -> std::process::ExitCode {
    withings_token::run()
}

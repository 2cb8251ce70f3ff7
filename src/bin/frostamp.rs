//! `frostamp`: operator, client and relying-party CLI. Thin: see `frostamp::cli`.

fn main() {
    let cli = <frostamp::cli::Cli as clap::Parser>::parse();
    std::process::exit(frostamp::cli::run(cli));
}

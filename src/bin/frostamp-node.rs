//! `frostamp-node`: the boot image's `/init`.
//!
//! The node process (attested peer channels, DKG, HTTPS serving) is built in the
//! key-ceremony issue. Until then this binary only identifies itself and refuses
//! to run, so that nothing mistakes it for a working node.

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("frostamp-node {version}");
        return;
    }
    eprintln!("frostamp-node {version}: the networked node is not implemented yet; use `frostamp demo` for the in-process TSA");
    std::process::exit(2);
}

//! PID 1 duties: what `frostamp-node` does first when the kernel starts it as `/init`.
//!
//! In order ([`boot`]):
//!
//! 1. **Harden the process**: `prctl(PR_SET_DUMPABLE, 0)`, `RLIMIT_CORE = 0`,
//!    `mlockall(MCL_CURRENT | MCL_FUTURE)`: key shares never reach a core file or swap.
//! 2. **Mount** `proc` on `/proc`, `sysfs` on `/sys`, `devtmpfs` on `/dev`. The mount
//!    points are created in the initramfs, which is the kernel's rootfs in RAM: nothing
//!    is written to any disk (the image has no block device driver at all).
//! 3. **Wait for the kernel's RNG** (`getrandom` without `GRND_NONBLOCK`), logging how
//!    long it took when it was not ready at once: every key this node makes (TLS
//!    identity, FROST nonces and shares) comes from it.
//! 4. **Network**: bring up `lo`; the real interface was configured by the kernel
//!    (`ip=dhcp`, `CONFIG_IP_PNP_DHCP`) before `/init` ran, so check that some
//!    interface has an IPv4 address and log it.
//! 5. **Configuration** from QEMU fw_cfg ([`config`]): host-supplied, untrusted.
//!
//! The caller then checks SEV-SNP in production ([`sev::require_snp`]) and runs the
//! node. Any fatal error, a panic, or the node stopping ends in [`power_off`]: PID 1
//! must never exit (the kernel would panic), and a node that restarts is a fresh node
//! without a share that rejoins by repair, so powering off is the honest outcome.
//!
//! Logs are `tracing` lines on stderr, which the kernel opened on `/dev/console`
//! (the serial console): one line per step with `step=` and key=value fields.
//!
//! PID 1 does not reap zombies because the node never starts a child process.
//!
//! This module (in `sys` and `net`) holds the crate's only `unsafe` code: each block
//! is a single system call or union read with a `SAFETY:` comment.

pub mod config;
mod net;
pub mod sev;
mod sys;

pub use config::{ConfigError, NodeConfig};
pub use net::Addresses;

use std::io::Write;
use std::time::{Duration, Instant};

/// A PID 1 step failed.
#[derive(Debug, thiserror::Error)]
pub enum Pid1Error {
    /// A file-system operation on a fixed path.
    #[error("cannot {what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A system call.
    #[error("{what}: {source}")]
    Sys {
        /// Which call, for what.
        what: &'static str,
        /// The error (errno).
        source: std::io::Error,
    },
    /// No interface other than `lo` has an IPv4 address.
    #[error("no network: no interface but lo has an IPv4 address after {0:?} (is ip=dhcp on the kernel command line and a virtio-net device attached?)")]
    NoAddress(Duration),
    /// The fw_cfg configuration was refused.
    #[error("fw_cfg configuration: {0}")]
    Config(#[from] ConfigError),
    /// Production node outside an SEV-SNP guest.
    #[error("refusing to start: {0}")]
    NoSevSnp(&'static str),
}

/// Read [`config::FW_CFG_PATH`] (at most [`config::MAX_CONFIG_BYTES`] + 1 bytes) and parse it.
fn read_config() -> Result<NodeConfig, Pid1Error> {
    use std::io::Read;
    let file = std::fs::File::open(config::FW_CFG_PATH).map_err(|e| Pid1Error::Io {
        what: "open the fw_cfg configuration (QEMU -fw_cfg name=opt/frostamp/config,file=…)",
        path: config::FW_CFG_PATH,
        source: e,
    })?;
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    let limit = u64::try_from(config::MAX_CONFIG_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| Pid1Error::Io {
            what: "read the fw_cfg configuration",
            path: config::FW_CFG_PATH,
            source: e,
        })?;
    Ok(NodeConfig::parse(&bytes)?)
}

/// What [`boot`] established.
#[derive(Debug)]
pub struct Booted {
    /// The node configuration from fw_cfg.
    pub config: NodeConfig,
    /// Interfaces with an IPv4 address.
    pub addresses: Addresses,
    /// How long the kernel RNG took to become ready (zero if it was ready).
    pub rng_wait: Duration,
}

/// Running as the kernel's init process?
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Seconds since the kernel started (`/proc/uptime`), for boot-time logs.
pub fn uptime_secs() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sys(what: &'static str) -> impl FnOnce(std::io::Error) -> Pid1Error {
    move |source| Pid1Error::Sys { what, source }
}

/// Step 1: no core dumps, not dumpable, all memory locked.
pub fn harden() -> Result<(), Pid1Error> {
    sys::set_not_dumpable().map_err(sys("prctl(PR_SET_DUMPABLE, 0)"))?;
    sys::no_core_dumps().map_err(sys("setrlimit(RLIMIT_CORE, 0)"))?;
    sys::mlockall().map_err(sys("mlockall(MCL_CURRENT | MCL_FUTURE)"))?;
    tracing::info!(
        step = "harden",
        dumpable = 0,
        rlimit_core = 0,
        mlockall = "current|future",
        "process hardened"
    );
    Ok(())
}

/// Step 2: `/proc`, `/sys`, `/dev`.
pub fn mount_filesystems() -> Result<(), Pid1Error> {
    const MOUNTS: [(&str, &str, libc::c_ulong); 3] = [
        (
            "/proc",
            "proc",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        ),
        (
            "/sys",
            "sysfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        ),
        ("/dev", "devtmpfs", libc::MS_NOSUID | libc::MS_NOEXEC),
    ];
    for (target, fstype, flags) in MOUNTS {
        // A mount point in the initramfs, i.e. in RAM (see tests/no_persistence.rs).
        match std::fs::create_dir(target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(Pid1Error::Io {
                    what: "create a mount point in the initramfs",
                    path: target,
                    source,
                })
            }
        }
        match sys::mount(fstype, target, fstype, flags) {
            Ok(()) => tracing::info!(step = "mount", target, fstype, "mounted"),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::info!(step = "mount", target, fstype, "already mounted")
            }
            Err(source) => {
                return Err(Pid1Error::Io {
                    what: "mount",
                    path: target,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Step 3: block until the kernel's CRNG is initialised; returns how long that took.
pub fn wait_for_rng() -> Result<Duration, Pid1Error> {
    let mut probe = [0u8; 1];
    match sys::getrandom(&mut probe, false) {
        Ok(()) => {
            tracing::info!(step = "rng", waited_ms = 0, "kernel RNG ready");
            return Ok(Duration::ZERO);
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(source) => {
            return Err(Pid1Error::Sys {
                what: "getrandom",
                source,
            })
        }
    }
    tracing::warn!(
        step = "rng",
        "kernel RNG not initialised yet; waiting (getrandom blocks)"
    );
    let t = Instant::now();
    sys::getrandom(&mut probe, true).map_err(sys("getrandom (blocking)"))?;
    let waited = t.elapsed();
    tracing::info!(
        step = "rng",
        waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        "kernel RNG ready"
    );
    Ok(waited)
}

/// Step 4: `lo` up; wait up to `wait` for another interface with an IPv4 address.
pub fn network(wait: Duration) -> Result<Addresses, Pid1Error> {
    net::bring_up("lo").map_err(sys("bring up lo (SIOCSIFFLAGS)"))?;
    tracing::info!(step = "net", interface = "lo", "up");
    let t = Instant::now();
    loop {
        let addrs = net::ipv4_addresses().map_err(sys("list addresses (SIOCGIFCONF)"))?;
        if addrs.iter().any(|(_, a)| !a.is_loopback()) {
            for (interface, address) in &addrs {
                tracing::info!(step = "net", interface = interface.as_str(), %address, "IPv4 address");
            }
            return Ok(addrs);
        }
        if t.elapsed() >= wait {
            return Err(Pid1Error::NoAddress(t.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Steps 1–5 (see the module documentation).
pub fn boot() -> Result<Booted, Pid1Error> {
    tracing::info!(
        step = "start",
        version = env!("CARGO_PKG_VERSION"),
        "frostamp-node running as PID 1"
    );
    harden()?;
    mount_filesystems()?;
    tracing::info!(
        step = "mount",
        uptime_s = uptime_secs().unwrap_or(-1.0),
        "filesystems mounted"
    );
    let rng_wait = wait_for_rng()?;
    let addresses = network(Duration::from_secs(10))?;
    let config = read_config()?;
    tracing::info!(
        step = "config",
        source = config::FW_CFG_PATH,
        name = config.name.as_str(),
        public = %config.public,
        peer = %config.peer,
        vcek = config.vcek.is_some(),
        insecure_dev_platform = config.insecure_dev_platform.is_some(),
        "configuration read (host-supplied, untrusted)"
    );
    use crate::clock::Clock;
    // The wall clock comes from the (host-emulated, untrusted) RTC; signers compare
    // genTime against it, so log it where an operator can see a wrong one.
    let unix = crate::clock::SystemClock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    tracing::info!(
        step = "booted",
        uptime_s = uptime_secs().unwrap_or(-1.0),
        wall_clock_unix = unix,
        "PID 1 duties done"
    );
    Ok(Booted {
        config,
        addresses,
        rng_wait,
    })
}

/// Log `reason`, flush, power the VM off. Never returns: if the kernel refuses to
/// power off, abort (as PID 1 that panics the kernel, which stops the node too).
pub fn power_off(reason: &str) -> ! {
    tracing::error!(step = "poweroff", reason, "fatal; powering off");
    let mut err = std::io::stderr();
    let _ = writeln!(err, "frostamp-node: {reason}; powering off");
    let _ = err.flush();
    let e = sys::power_off();
    let _ = writeln!(err, "frostamp-node: power off failed: {e}");
    let _ = err.flush();
    std::process::abort()
}

/// As PID 1, a panic powers the VM off (after the message reaches the console)
/// instead of killing init and panicking the kernel.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        power_off(&format!("panic: {info}"));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_pid1_under_cargo_test() {
        assert!(!is_pid1());
    }

    #[test]
    fn rng_is_ready_on_a_running_system() {
        assert_eq!(wait_for_rng().unwrap(), Duration::ZERO);
        let mut a = [0u8; 64];
        sys::getrandom(&mut a, true).unwrap();
        assert_ne!(a, [0u8; 64]);
    }

    #[test]
    fn uptime_is_positive() {
        assert!(uptime_secs().unwrap() > 0.0);
    }

    #[test]
    fn hardening_calls_work_unprivileged() {
        // Safe to apply to the test process: it only loses core dumps and ptrace.
        sys::set_not_dumpable().unwrap();
        sys::no_core_dumps().unwrap();
    }

    #[test]
    fn unsafe_is_allowed_only_in_pid1() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        let needle = concat!("allow(", "unsafe_code)");
        let mut users = Vec::new();
        for f in files {
            if std::fs::read_to_string(&f).unwrap().contains(needle) {
                users.push(f.strip_prefix(&src).unwrap().display().to_string());
            }
        }
        users.sort();
        assert_eq!(users, ["pid1/net.rs", "pid1/sys.rs"]);
    }

    #[test]
    fn missing_fw_cfg_is_a_typed_error() {
        if std::path::Path::new(config::FW_CFG_PATH).exists() {
            return; // a QEMU guest with our config: nothing to test here
        }
        let e = read_config().unwrap_err();
        assert!(matches!(e, Pid1Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("fw_cfg"), "{e}");
    }
}

//! The local cluster's time servers: three int08h `roughenough` servers (the Roughtime
//! reference implementation, `make roughtime-deps`) on 127.0.0.1, each with a key made
//! for this cluster. `frostamp cluster up` starts them before the nodes, writes
//! `<dir>/time-servers.json` (a [`TimeConfig`], q = 2) and gives every node
//! `--time-servers` that file; `cluster down` stops them and deletes their seeds;
//! `frostamp cluster time-server --stop I | --start I` ([`time_server_stop`],
//! [`time_server_start`]) stops one and starts it again with the same key and port.
//!
//! Files under `<dir>/time/`: `seed-<i>.hex` (the server's 32-byte Ed25519 seed as 64 hex
//! digits, mode 0400, the server's own format) and `server-<i>.log`.

use super::files::{read_to_string, ClusterFile, ClusterTimeServer};
use crate::clock::{Clock, SystemClock};
use crate::time::config::TimeConfig;
use crate::time::roughtime::{self, QueryError};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};
use zeroize::Zeroizing;

/// How many time servers a local cluster runs.
pub const LOCAL_TIME_SERVERS: usize = 3;
/// q of the local cluster's time configuration.
pub const LOCAL_TIME_QUORUM: usize = 2;
/// The environment variable that names the `roughenough_server` binary.
pub const ROUGHENOUGH_ENV: &str = "FROSTAMP_ROUGHENOUGH";
/// The time configuration of a local cluster, in its directory.
pub const TIME_CONFIG_FILE: &str = "time-servers.json";
/// Where `cluster up` moves the configuration an earlier cluster in the same directory
/// left (its tokens' evidence names those servers).
pub const PREVIOUS_TIME_CONFIG_FILE: &str = "time-servers.previous.json";
/// How long a starting server has to answer a verified request.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The nodes' time configuration for these servers: RFC 10049, q = 2.
pub fn time_config(servers: &[ClusterTimeServer]) -> TimeConfig {
    TimeConfig {
        servers: servers.iter().map(ClusterTimeServer::time_server).collect(),
        quorum: LOCAL_TIME_QUORUM,
    }
}

/// `--time-offsets a,b,c`: one `--fixed-offset` in seconds per server (what the server
/// accepts: -32768..=32767).
pub fn parse_time_offsets(s: &str) -> Result<Vec<i16>> {
    let offsets = s
        .split(',')
        .map(|x| {
            let x = x.trim();
            x.strip_prefix('+')
                .unwrap_or(x)
                .parse::<i16>()
                .with_context(|| {
                    format!(
                        "--time-offsets {s:?}: {x:?} is not a number of seconds in -32768..=32767"
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    if offsets.len() != LOCAL_TIME_SERVERS {
        bail!(
            "--time-offsets {s:?}: give {LOCAL_TIME_SERVERS} offsets (seconds, one per time server), e.g. 0,0,3600"
        );
    }
    Ok(offsets)
}

/// The `roughenough_server` binary: `$FROSTAMP_ROUGHENOUGH`, else
/// `~/.cache/frostamp/tools/bin/roughenough_server` (where `make roughtime-deps` installs
/// it), else `roughenough_server` on `PATH`.
pub fn roughenough_binary() -> Result<PathBuf> {
    const HINT: &str = "run `make roughtime-deps` (installs roughenough-server 2.2.0 into ~/.cache/frostamp/tools) or set FROSTAMP_ROUGHENOUGH";
    if let Some(p) = std::env::var_os(ROUGHENOUGH_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !is_executable(&p) {
            bail!(
                "{ROUGHENOUGH_ENV}={} is not an executable file; {HINT}",
                p.display()
            );
        }
        return Ok(p);
    }
    let cached = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/frostamp/tools/bin/roughenough_server"));
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("roughenough_server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    cached
        .into_iter()
        .chain(on_path)
        .find(|p| is_executable(p))
        .ok_or_else(|| anyhow!("no Roughtime server (roughenough_server) for the local cluster's time servers: {HINT}"))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A fresh random seed, written as 64 hex digits to `path` with mode 0400 (an old file
/// there is replaced); returns the public key.
fn new_seed_file(path: &Path) -> Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
        .map_err(|e| anyhow!("Ed25519 key from seed: {e}"))?;
    let public: [u8; 32] = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .try_into()
        .map_err(|_| anyhow!("Ed25519 public key is not 32 bytes"))?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", path.display())),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(Zeroizing::new(hex::encode(seed.as_ref())).as_bytes())?;
    Ok(public)
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Start the server process.
fn spawn(bin: &Path, s: &ClusterTimeServer) -> Result<std::process::Child> {
    let port = s.socket_addr()?.port().to_string();
    let log = std::fs::File::create(&s.log)
        .with_context(|| format!("cannot write {}", s.log.display()))?;
    let mut cmd = std::process::Command::new(bin);
    // ROUGHENOUGH_* variables would change the server's setup.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROUGHENOUGH_") {
            cmd.env_remove(name);
        }
    }
    let child = cmd
        .args(["--interface", "127.0.0.1", "--port", &port])
        .args(["--num-threads", "1", "--seed-file"])
        .arg(&s.seed_file)
        .arg(format!("--fixed-offset={}", s.offset_secs))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    Ok(child)
}

/// Why a started server is not serving.
enum NotServing {
    /// The process exited (`status`); `port_taken`: because its port was in use.
    Died {
        port_taken: bool,
        status: String,
        log: String,
    },
    /// Anything else (no answer in time, an answer that does not verify).
    Other(anyhow::Error),
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let last: Vec<&str> = text.lines().rev().take(5).collect();
    last.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Query `child`, server `s`, until a response verifies under the recorded key (up to
/// [`ANSWER_WITHIN`]); returns the server's offset from this machine's clock in seconds.
async fn wait_serving(
    s: &ClusterTimeServer,
    child: &mut std::process::Child,
) -> Result<i64, NotServing> {
    let spec = s.spec().map_err(NotServing::Other)?;
    let addr = s.socket_addr().map_err(NotServing::Other)?;
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        let mut nonce = [0u8; roughtime::NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let last = match roughtime::query(addr, &spec, &nonce, Duration::from_millis(250)).await {
            Ok((bytes, _)) => {
                let v = roughtime::verify_response(&spec, &nonce, &bytes).map_err(|e| {
                    NotServing::Other(anyhow!(
                        "time server {} at {addr} answered, but its response does not verify under key {}: {e}",
                        s.name,
                        s.public_key
                    ))
                })?;
                let now = SystemClock
                    .now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_micros();
                let diff = i128::from(v.midpoint_micros) - i128::try_from(now).unwrap_or(0);
                return Ok(i64::try_from(diff / 1_000_000).unwrap_or(i64::MAX));
            }
            // Not bound yet: a timeout, or ICMP port unreachable as a failed receive.
            Err(e @ (QueryError::Timeout(_) | QueryError::Recv(_))) => e.to_string(),
            Err(e) => return Err(NotServing::Other(e.into())),
        };
        if let Some(status) = child.try_wait().map_err(|e| NotServing::Other(e.into()))? {
            let log = log_tail(&s.log);
            let port_taken = std::fs::read_to_string(&s.log)
                .unwrap_or_default()
                .contains("Address already in use");
            return Err(NotServing::Died {
                port_taken,
                status: status.to_string(),
                log,
            });
        }
        if Instant::now() > deadline {
            return Err(NotServing::Other(anyhow!(
                "time server {} at {addr} (pid {}) gave no verified answer within {:?} ({last}); its log ends with:\n{}",
                s.name,
                s.pid.unwrap_or_default(),
                ANSWER_WITHIN,
                log_tail(&s.log)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn describe(s: &ClusterTimeServer, measured: i64) -> String {
    format!(
        "      time server {}: pid {}, udp {}, key {}, offset {:+} s (measured {:+} s), log {}",
        s.name,
        s.pid.unwrap_or_default(),
        s.address,
        s.public_key,
        s.offset_secs,
        measured,
        s.log.display()
    )
}

/// Start [`LOCAL_TIME_SERVERS`] servers for the cluster in `dir` (absolute), server i with
/// `offsets[i-1]` seconds of `--fixed-offset`, on free UDP ports; wait until each gives a
/// verified answer; write `<dir>/time-servers.json`. On failure every server started
/// here is killed and the seeds are removed.
pub async fn start_local_time_servers(
    dir: &Path,
    offsets: &[i16],
) -> Result<Vec<ClusterTimeServer>> {
    if offsets.len() != LOCAL_TIME_SERVERS {
        bail!("{LOCAL_TIME_SERVERS} time server offsets needed, got {offsets:?}");
    }
    let bin = roughenough_binary()?;
    let time_dir = dir.join("time");
    std::fs::create_dir_all(&time_dir)?;
    let mut started: Vec<ClusterTimeServer> = Vec::new();
    // Our own children until they serve: on failure they are killed through their
    // handles (a process that has just been started may not show its arguments in
    // /proc yet, so it could not be recognised by them).
    let mut children: Vec<std::process::Child> = Vec::new();
    let result = async {
        for (i, offset) in (1u16..).zip(offsets) {
            let seed_file = time_dir.join(format!("seed-{i}.hex"));
            let public = new_seed_file(&seed_file)?;
            let mut s = ClusterTimeServer {
                index: i,
                name: format!("local-{i}"),
                public_key: hex::encode(public),
                address: String::new(),
                pid: None,
                offset_secs: *offset,
                seed_file,
                log: time_dir.join(format!("server-{i}.log")),
            };
            // The port is picked free and released before the server binds it; another
            // process can win that race, so a server that dies for it starts again.
            let mut attempt = 0;
            let measured = loop {
                attempt += 1;
                s.address = format!("127.0.0.1:{}", free_udp_port()?);
                let mut child = spawn(&bin, &s)?;
                s.pid = Some(child.id());
                let serving = wait_serving(&s, &mut child).await;
                children.push(child);
                match serving {
                    Ok(m) => break m,
                    Err(NotServing::Died {
                        port_taken: true, ..
                    }) if attempt < 5 => continue,
                    Err(NotServing::Died { status, log, .. }) => {
                        s.pid = None;
                        let e = anyhow!(
                            "time server {} ({}) exited ({status}); its log ends with:\n{log}",
                            s.name,
                            bin.display()
                        );
                        started.push(s);
                        return Err(e);
                    }
                    Err(NotServing::Other(e)) => {
                        started.push(s);
                        return Err(e);
                    }
                }
            };
            println!("{}", describe(&s, measured));
            started.push(s);
        }
        let config = time_config(&started);
        config
            .policy()
            .map_err(|e| anyhow!("local time configuration: {e}"))?;
        let path = dir.join(TIME_CONFIG_FILE);
        std::fs::write(&path, serde_json::to_vec_pretty(&config)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "      time configuration for the nodes: {} (quorum {LOCAL_TIME_QUORUM} of {LOCAL_TIME_SERVERS})",
            path.display()
        );
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(started),
        Err(e) => {
            for c in &mut children {
                let _ = c.kill();
                let _ = c.wait();
            }
            for s in &started {
                let _ = std::fs::remove_file(&s.seed_file);
            }
            Err(e)
        }
    }
}

/// SIGTERM a running server and wait (up to 5 s) until it is gone.
fn stop_one(s: &mut ClusterTimeServer) -> Result<bool> {
    let Some(pid) = s.pid.filter(|_| s.is_running()) else {
        s.pid = None;
        return Ok(false);
    };
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("time server {}: could not signal pid {pid}", s.name);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.is_running() {
        if Instant::now() > deadline {
            bail!(
                "time server {}: pid {pid} still running 5 s after SIGTERM",
                s.name
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    s.pid = None;
    Ok(true)
}

/// Stop every server (for `cluster down`); with `remove_seeds`, delete the seed files.
/// Prints a line per server; errors are printed, not returned.
pub fn stop_all(servers: &mut [ClusterTimeServer], remove_seeds: bool) {
    for s in servers.iter_mut() {
        let pid = s.pid;
        match stop_one(s) {
            Ok(true) => println!(
                "time server {}: stopped (pid {})",
                s.name,
                pid.unwrap_or_default()
            ),
            Ok(false) => println!("time server {}: not running", s.name),
            Err(e) => eprintln!("{e}"),
        }
        if remove_seeds {
            match std::fs::remove_file(&s.seed_file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => eprintln!("cannot remove {}: {e}", s.seed_file.display()),
            }
        }
    }
}

fn load(dir: &Path) -> Result<(PathBuf, ClusterFile)> {
    let path = dir.join("cluster.json");
    let file: ClusterFile = serde_json::from_str(&read_to_string(&path, "cluster description")?)?;
    if file.time_servers.is_empty() {
        bail!("{} records no local time servers", path.display());
    }
    Ok((path, file))
}

fn find(file: &mut ClusterFile, index: u16) -> Result<&mut ClusterTimeServer> {
    let known: Vec<u16> = file.time_servers.iter().map(|s| s.index).collect();
    file.time_servers
        .iter_mut()
        .find(|s| s.index == index)
        .ok_or_else(|| anyhow!("no time server {index} in cluster.json (it has {known:?})"))
}

/// `frostamp cluster time-server --stop INDEX`: stop one time server of the local cluster
/// in `dir` (its seed stays, so [`time_server_start`] brings the same server back).
pub fn time_server_stop(dir: &Path, index: u16) -> Result<ClusterTimeServer> {
    let (path, mut file) = load(dir)?;
    let s = find(&mut file, index)?;
    let pid = s.pid;
    if stop_one(s)? {
        println!(
            "time server {}: stopped (pid {}); `frostamp cluster time-server --start {index}` starts it again",
            s.name,
            pid.unwrap_or_default()
        );
    } else {
        println!("time server {}: was not running", s.name);
    }
    let s = s.clone();
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
    Ok(s)
}

/// `frostamp cluster time-server --start INDEX [--offset SECONDS]`: start a stopped time
/// server again with the same seed (key) and port, with `offset` (default: its recorded
/// one), and wait until it gives a verified answer. The nodes' time configuration is
/// unchanged: same name, key and address.
pub async fn time_server_start(
    dir: &Path,
    index: u16,
    offset: Option<i16>,
) -> Result<ClusterTimeServer> {
    let (path, mut file) = load(dir)?;
    let bin = roughenough_binary()?;
    let s = find(&mut file, index)?;
    if s.is_running() {
        bail!(
            "time server {} is running (pid {}); stop it first with --stop {index}",
            s.name,
            s.pid.unwrap_or_default()
        );
    }
    if !s.seed_file.exists() {
        bail!(
            "time server {}: its seed {} is gone (the cluster was stopped)",
            s.name,
            s.seed_file.display()
        );
    }
    if let Some(o) = offset {
        s.offset_secs = o;
    }
    let mut child = spawn(&bin, s)?;
    s.pid = Some(child.id());
    let measured = match wait_serving(s, &mut child).await {
        Ok(m) => m,
        Err(NotServing::Died {
            port_taken,
            status,
            log,
        }) => {
            s.pid = None;
            let why = if port_taken {
                format!("its port {} is taken by another process", s.address)
            } else {
                format!("it exited ({status})")
            };
            let name = s.name.clone();
            std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
            bail!("time server {name} did not start: {why}; its log ends with:\n{log}");
        }
        Err(NotServing::Other(e)) => {
            // Recorded, so `cluster down` or `--stop` can stop it.
            std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
            return Err(e);
        }
    };
    println!("{}", describe(s, measured));
    let s = s.clone();
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::roughtime::Version;

    #[test]
    fn time_offsets_parse_three_signed_seconds() {
        assert_eq!(parse_time_offsets("0,0,0").unwrap(), vec![0, 0, 0]);
        assert_eq!(
            parse_time_offsets("-3600, +5,32767").unwrap(),
            vec![-3600, 5, 32767]
        );
        assert_eq!(
            parse_time_offsets("-32768,0,1").unwrap(),
            vec![-32768, 0, 1]
        );
        for bad in [
            "",
            "0,0",
            "0,0,0,0",
            "0,,0",
            "a,0,0",
            "0,0,32768",
            "1.5,0,0",
        ] {
            assert!(parse_time_offsets(bad).is_err(), "{bad:?}");
        }
        let e = parse_time_offsets("0,0").unwrap_err().to_string();
        assert!(e.contains("give 3 offsets"), "{e}");
    }

    fn server(i: u16, offset: i16) -> ClusterTimeServer {
        ClusterTimeServer {
            index: i,
            name: format!("local-{i}"),
            public_key: hex::encode([i as u8; 32]),
            address: format!("127.0.0.1:{}", 40000 + i),
            pid: Some(1000 + u32::from(i)),
            offset_secs: offset,
            seed_file: PathBuf::from(format!("/c/time/seed-{i}.hex")),
            log: PathBuf::from(format!("/c/time/server-{i}.log")),
        }
    }

    /// cluster.json as written before the local time servers existed.
    const OLD_CLUSTER_JSON: &str = r#"{
      "version": 1,
      "nodes": [{"index": 1, "url": "https://127.0.0.1:1", "public": "127.0.0.1:1",
                 "peer": "127.0.0.1:2", "pin": null, "pid": 7, "log": "/c/node1.log",
                 "phase": "serving"}],
      "t": 3, "epoch": "local-1", "group_key": null, "measurement": null, "root": null,
      "chain": null, "insecure_dev_root": null, "operator_key": "/c/operator.key",
      "timings_ms": {"total": 5}
    }"#;

    #[test]
    fn cluster_file_round_trips_with_and_without_time_servers() {
        let old: ClusterFile = serde_json::from_str(OLD_CLUSTER_JSON).unwrap();
        assert!(old.time_servers.is_empty());
        // Without servers the file keeps its old shape.
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("time_servers"), "{text}");
        let again: ClusterFile = serde_json::from_str(&text).unwrap();
        assert!(again.time_servers.is_empty());

        let mut with = old;
        with.time_servers = vec![server(1, 0), server(2, 0), server(3, -3600)];
        with.time_servers[1].pid = None;
        let text = serde_json::to_string_pretty(&with).unwrap();
        let back: ClusterFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.time_servers, with.time_servers);
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&with).unwrap()
        );
        // Unknown fields in a server entry are refused, like everywhere in cluster.json.
        let mut v = serde_json::to_value(&with).unwrap();
        v["time_servers"][0]["colour"] = "blue".into();
        assert!(serde_json::from_value::<ClusterFile>(v).is_err());
    }

    #[test]
    fn the_nodes_configuration_names_every_server_with_quorum_two() {
        let servers = [server(1, 0), server(2, 7), server(3, 0)];
        let config = time_config(&servers);
        assert_eq!(config.quorum, LOCAL_TIME_QUORUM);
        assert_eq!(config.servers.len(), 3);
        assert_eq!(config.servers[2].name, "local-3");
        assert_eq!(config.servers[2].address, "127.0.0.1:40003");
        assert_eq!(config.servers[2].version, "rfc");
        let policy = config.policy().unwrap();
        assert_eq!(policy.quorum, 2);
        assert_eq!(policy.servers[1].public_key, [2u8; 32]);
        assert_eq!(policy.servers[1].version, Version::Rfc);
        // What frostamp-node and `verify --time-servers` read back.
        let json = serde_json::to_vec(&config).unwrap();
        assert_eq!(TimeConfig::from_json(&json).unwrap(), config);
    }

    #[test]
    fn seed_files_are_owner_read_only_hex_of_the_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed-1.hex");
        let public = new_seed_file(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o400);
        let seed = hex::decode(std::fs::read_to_string(&path).unwrap()).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        assert_eq!(
            ring::signature::KeyPair::public_key(&pair).as_ref(),
            public.as_slice()
        );
        // A second cluster in the same directory gets a new seed over the read-only file.
        let other = new_seed_file(&path).unwrap();
        assert_ne!(other, public);
    }

    #[test]
    fn a_server_without_its_process_is_not_running() {
        let mut s = server(1, 0);
        s.pid = None;
        assert!(!s.is_running());
        // Our own pid exists but its command line does not name the seed file.
        s.pid = Some(std::process::id());
        assert!(!s.is_running());
    }
}

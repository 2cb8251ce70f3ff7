//! Interop with the real int08h roughenough server (2.2), started on 127.0.0.1 with a
//! seed made for this run. Skipped, loudly, only when the binary is absent.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

mod roughtime_support;

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use frostamp::time::roughtime::*;
use roughtime_support::*;

fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ROUGHENOUGH_SERVER_BIN") {
        return Some(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")?;
    let dir = Path::new(&home).join(".cache/frostamp/tools/bin");
    ["roughenough-server", "roughenough_server"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn now_unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A seed unique to this run: SHA-512 of time, pid and a counter (no RNG crate here).
fn fresh_seed(counter: u64) -> [u8; 32] {
    let t = now_unix_micros().to_le_bytes();
    let pid = std::process::id().to_le_bytes();
    h(&[b"rt-wip interop seed", &t, &pid, &counter.to_le_bytes()])
}

fn free_udp_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server process and its temporary directory, both removed on drop.
struct RunningServer {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
    spec: ServerSpec,
    log: PathBuf,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(binary: &Path, tag: u64, fixed_offset: i16) -> RunningServer {
    use std::os::unix::fs::PermissionsExt;

    let dir = std::env::temp_dir().join(format!("rt-wip-interop-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seed = fresh_seed(tag);
    let seed_file = dir.join("seed.hex");
    // The server's plain seed format: the 32-byte Ed25519 seed as 64 hex digits; the file
    // must not be readable by group or others.
    std::fs::write(&seed_file, hex::encode(seed)).unwrap();
    std::fs::set_permissions(&seed_file, std::fs::Permissions::from_mode(0o400)).unwrap();
    let public_key = public_key_from_seed(&seed);

    let port = free_udp_port();
    let log = dir.join("server.log");
    let mut command = Command::new(binary);
    // Keep ROUGHENOUGH_* variables of the environment from changing the setup.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROUGHENOUGH_") {
            command.env_remove(name);
        }
    }
    command
        .args(["--interface", "127.0.0.1", "--port", &port.to_string()])
        .args(["--num-threads", "1", "--seed-file"])
        .arg(&seed_file)
        .arg(format!("--fixed-offset={fixed_offset}"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("server.err")).unwrap());
    eprintln!("starting: {command:?}");
    eprintln!(
        "  long-term public key (derived from the seed here): {}",
        hex::encode(public_key)
    );
    let child = command.spawn().expect("spawn roughenough server");
    RunningServer {
        child,
        dir,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        spec: ServerSpec {
            name: "local roughenough".into(),
            public_key,
            version: Version::Rfc,
        },
        log,
    }
}

/// Queries until the server answers (it needs a moment to bind); returns the response.
async fn query_until_up(server: &RunningServer, nonce: &[u8; 32]) -> (Vec<u8>, Duration) {
    for _ in 0..50 {
        match query(server.addr, &server.spec, nonce, Duration::from_millis(200)).await {
            Ok(answer) => return answer,
            // Not bound yet: a timeout, or ICMP port-unreachable as a refused receive.
            Err(QueryError::Timeout(_)) | Err(QueryError::Recv(_)) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("query: {e}"),
        }
    }
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let err = std::fs::read_to_string(server.dir.join("server.err")).unwrap_or_default();
    panic!("server never answered\nstdout:\n{log}\nstderr:\n{err}");
}

/// Offset of a verified midpoint from the local clock, in whole seconds (rounded).
fn offset_seconds(verified: &Verified) -> i64 {
    let diff = verified.midpoint_micros as i128 - now_unix_micros() as i128;
    ((diff as f64) / 1e6).round() as i64
}

#[tokio::test]
async fn roughenough_server_interop() {
    let Some(binary) = server_binary() else {
        eprintln!(
            "SKIPPED roughenough interop: no server binary at ~/.cache/frostamp/tools/bin/\
             roughenough-server (or roughenough_server); set ROUGHENOUGH_SERVER_BIN"
        );
        return;
    };
    let version = Command::new(&binary).arg("--version").output().unwrap();
    eprintln!(
        "server: {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let mut rng = XorShift(now_unix_micros() | 1);

    // --- Honest server: RFC version 1.
    let honest = start_server(&binary, 1, 0);
    let nonce = rng.bytes::<32>();
    let (response, rtt) = query_until_up(&honest, &nonce).await;
    let verified = verify_response(&honest.spec, &nonce, &response).expect("RFC response verifies");
    let offset = offset_seconds(&verified);
    eprintln!(
        "RFC: {} response bytes, rtt {rtt:?}, midpoint {} us, radius {} us, offset {offset} s",
        response.len(),
        verified.midpoint_micros,
        verified.radius_micros
    );
    assert!(offset.abs() <= 3, "honest server is {offset} s off");
    assert!(verified.radius_micros >= 1_000_000);

    // The same response fails for another nonce, another key, or a flipped byte.
    let other = rng.bytes::<32>();
    assert!(verify_response(&honest.spec, &other, &response).is_err());
    let stranger = ServerSpec {
        public_key: public_key_from_seed(&[7; 32]),
        ..honest.spec.clone()
    };
    assert_eq!(
        verify_response(&stranger, &nonce, &response),
        Err(RoughtimeError::BadDelegationSignature)
    );
    // The context strings differ: the RFC response is not a valid 0x8000000c response.
    let as_draft = ServerSpec {
        version: Version::Draft12,
        ..honest.spec.clone()
    };
    assert_eq!(
        verify_response(&as_draft, &nonce, &response),
        Err(RoughtimeError::BadDelegationSignature)
    );
    for pos in (0..response.len()).step_by(5) {
        let mut tampered = response.clone();
        tampered[pos] ^= 0x10;
        assert!(
            verify_response(&honest.spec, &nonce, &tampered).is_err(),
            "byte {pos}"
        );
    }

    // A burst from several sockets: whatever the server batches, every answer verifies
    // (a batch gives non-empty PATHs, leaves = full request packets).
    let nonces: Vec<[u8; 32]> = (0..16).map(|_| rng.bytes::<32>()).collect();
    let answers = futures_join(&honest, &nonces).await;
    let mut deepest = 0;
    for (nonce, response) in nonces.iter().zip(&answers) {
        verify_response(&honest.spec, nonce, response).expect("burst response verifies");
        deepest = deepest.max(packet_range(response, &[b"PATH"]).len() / 32);
    }
    eprintln!(
        "burst of {}: all verify, deepest PATH {deepest} hashes",
        nonces.len()
    );

    // Draft 0x8000000c: roughenough 2.2 parses it but advertises only version 1, so it
    // ignores a request offering only the draft version (RFC 5.1.1 "MAY ignore").
    let draft = ServerSpec {
        version: Version::Draft12,
        ..honest.spec.clone()
    };
    match query(honest.addr, &draft, &nonce, Duration::from_millis(800)).await {
        Err(QueryError::Timeout(_)) => eprintln!("Draft12 request: no answer (as expected)"),
        Ok((bytes, _)) => {
            let verified = verify_response(&draft, &nonce, &bytes).expect("draft answer verifies");
            eprintln!("Draft12 answered and verifies: {verified:?}");
        }
        Err(e) => panic!("Draft12 query: {e}"),
    }
    // SRV names another key: the server must ignore the request (RFC 5.2).
    match query(honest.addr, &stranger, &nonce, Duration::from_millis(800)).await {
        Err(QueryError::Timeout(_)) => eprintln!("request with foreign SRV: no answer"),
        other => panic!("request with foreign SRV was answered: {other:?}"),
    }
    drop(honest);

    // --- Lying servers: --fixed-offset shifts MIDP (and its delegation) by N seconds.
    for (tag, lie) in [(2u64, 3600i16), (3, -7200)] {
        let liar = start_server(&binary, tag, lie);
        let nonce = rng.bytes::<32>();
        let (response, _) = query_until_up(&liar, &nonce).await;
        let verified = verify_response(&liar.spec, &nonce, &response).expect("liar verifies");
        let offset = offset_seconds(&verified);
        eprintln!("--fixed-offset={lie}: verified midpoint is {offset} s from the local clock");
        assert!(
            (offset - i64::from(lie)).abs() <= 3,
            "offset {offset}, lie {lie}"
        );
    }
}

/// Sends every request before reading any answer, one socket each.
async fn futures_join(server: &RunningServer, nonces: &[[u8; 32]]) -> Vec<Vec<u8>> {
    let mut sockets = Vec::new();
    for nonce in nonces {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(server.addr).await.unwrap();
        socket
            .send(&encode_request(nonce, &server.spec))
            .await
            .unwrap();
        sockets.push(socket);
    }
    let mut answers = Vec::new();
    for socket in sockets {
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
            .await
            .expect("burst answer in time")
            .unwrap();
        buf.truncate(n);
        answers.push(buf);
    }
    answers
}

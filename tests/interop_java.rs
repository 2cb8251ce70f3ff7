//! Interop with Java (issue 14, "Java verifies an Ed25519 epoch"): Debian's JDK 17
//! (`jarsigner`, `keytool`, `javac`) and Bouncy Castle (`libbcprov-java`,
//! `libbcpkix-java`) against a local cluster started by `frostamp cluster up`.
//!
//! Per cluster, the test:
//! 1. makes a JAR and a code-signing PKI with `keytool`: a CA (EC P-256, basic
//!    constraints CA) and a signer key (EC P-256) with a certificate from that CA
//!    (keyUsage digitalSignature, extendedKeyUsage codeSigning). `jarsigner -strict`
//!    needs this: a self-signed signer is the severe warning `signerSelfSigned`, and a
//!    signer chain that does not reach a trusted certificate is `chainNotValidated`;
//! 2. signs the JAR with `jarsigner -tsa https://localhost:PORT/` (node 1's public
//!    port). Java's TLS client verifies the node: its truststore holds only the
//!    cluster's `root.pem`, the development CA that issued each node's public TLS
//!    certificate in the ceremony (SANs `localhost`, `127.0.0.1`). A truststore
//!    without it makes jarsigner fail the handshake (`PKIX path building failed`) and
//!    write no JAR. jarsigner checks the token it receives (signature, then the TSA
//!    chain against the signing keystore's trusted certificates and `cacerts`), so
//!    the signing keystore must trust the development root as well, or `-strict`
//!    exits 64 although the JAR is written;
//! 3. verifies with `jarsigner -verify -verbose -certs -strict`. The keystore given
//!    to `-verify` supplies the trust anchors, with the JDK's `cacerts`: its trusted
//!    certificate entries (and self-signed key entries) become the PKIX anchors of
//!    both the signer's chain (validator variant code signing: key usage and
//!    codeSigning EKU) and the TSA's chain (variant tsa server: the critical
//!    id-kp-timeStamping EKU), revocation off. `-strict` turns the severe warnings
//!    into the exit status, OR-ed: 4 signer expired / not yet valid / self-signed /
//!    chain not validated / disabled algorithm, 8 bad key usage, 16 unsigned entries,
//!    32 not signed by the alias, 64 `tsaChainNotValidated` ("The timestamp is
//!    invalid" / "The TSA certificate chain is invalid"), which covers both a token
//!    whose signature does not verify (`SignerInfo.getTimestamp` throws) and a TSA
//!    chain that reaches no anchor. Exit 0 under `-strict` is therefore "signature,
//!    signer chain and timestamp all valid";
//! 4. takes the timestamp token out of the signed JAR (`TspCheck extract`) and checks
//!    it with Bouncy Castle (`tests/interop/java/TspCheck.java`, compiled here with
//!    `javac` into a temp dir, offline): `TimeStampToken.validate` with a
//!    `JcaSimpleSignerInfoVerifierBuilder` for the TSA certificate in the token
//!    (signingCertificateV2 match, valid at genTime, critical timeStamping EKU,
//!    messageDigest, signature), then PKIX from the TSA certificate to the cluster's
//!    `root.pem` as the only anchor at genTime (Bouncy Castle's PKIX, revocation off:
//!    `tests/revocation.rs` covers CRLs with `frostamp verify`), and that the
//!    token's imprint is the digest of the JAR signature it is attached to.
//!    `frostamp verify` checks the same token, so a refusal by Java is Java's and
//!    not a broken token.
//!
//! An Ed25519 epoch (`cluster up --ciphersuite ed25519`) passes all of it: the token's
//! SignerInfo is id-Ed25519 with SHA-512 as its digest algorithm, the only digest JDK
//! 17 accepts with Ed25519 (`SignerInfo.makeSigAlg`, RFC 8419 §3.1). Twins: a
//! `-verify` keystore without the development root (exit 64), Bouncy Castle on the
//! token with one signature byte flipped (refused at `validate`) and with another
//! root as the anchor (refused at the path).
//!
//! The secp256k1 epoch is the failing case Java cannot avoid: no JDK or Bouncy
//! Castle algorithm exists for FROST(secp256k1) Schnorr signatures, so jarsigner
//! reports the TSA chain invalid at signing (exit 64), and at verification the
//! JDK's JAR verifier throws on the timestamp and discards the whole JAR signature
//! ("the jar will be treated as unsigned", exit 16); Bouncy Castle refuses the
//! token at `validate`. `docs/relying-parties.md` records the messages.
//!
//! A missing JDK or Bouncy Castle is a test failure naming `make system-deps`, never
//! a skip.
// Tests may panic: the panic lints of Cargo.toml's `[lints]` are for the product code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]
#![cfg(feature = "insecure-dev-attestation")]

mod common;
use common::*;

use frostamp::cli::ops::ClusterFile;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Password of every throwaway keystore here.
const PW: &str = "changeit";
/// Debian's Bouncy Castle (`libbcprov-java`, `libbcpkix-java`, which pulls in
/// `libbcutil-java`).
const BC_JARS: [&str; 3] = [
    "/usr/share/java/bcprov.jar",
    "/usr/share/java/bcutil.jar",
    "/usr/share/java/bcpkix.jar",
];
const DEPS: &str =
    "run `make system-deps` (openjdk-17-jdk-headless, libbcprov-java, libbcpkix-java)";

/// Runs a JDK tool at nice 19; a missing tool fails the test with what to install.
fn jdk(tool: &str, args: &[&str]) -> Output {
    Command::new("nice")
        .args(["-n", "19", tool])
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.code() != Some(127))
        .unwrap_or_else(|| panic!("cannot run `{tool}`: {DEPS}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(tool: &str, args: &[&str]) -> String {
    let out = jdk(tool, args);
    assert!(out.status.success(), "{tool} {args:?}: {}", text(&out));
    text(&out)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn class_path() -> String {
    for jar in BC_JARS {
        assert!(Path::new(jar).exists(), "{jar} missing: {DEPS}");
    }
    let classes = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-java");
    let mut cp = BC_JARS.join(":");
    cp.push(':');
    cp.push_str(s(&classes));
    cp
}

/// Compiles `tests/interop/java/TspCheck.java` once per test binary; the class path
/// to run it with.
fn tsp_check_cp() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let cp = class_path();
        let classes = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-java");
        std::fs::create_dir_all(&classes).unwrap();
        let src =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/java/TspCheck.java");
        ok(
            "javac",
            &[
                "-Xlint:all,-path",
                "-Werror",
                "-d",
                s(&classes),
                "-cp",
                &cp,
                s(&src),
            ],
        );
        cp
    })
}

fn tsp_check(args: &[&str]) -> Output {
    let mut all = vec!["-cp", tsp_check_cp(), "TspCheck"];
    all.extend_from_slice(args);
    jdk("java", &all)
}

/// The value after `key: ` in TspCheck's output.
fn value<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

/// The arguments naming the PKCS#12 keystore `ks` (password [`PW`]).
fn store(ks: &Path) -> [&str; 6] {
    ["-keystore", s(ks), "-storetype", "PKCS12", "-storepass", PW]
}

/// A PKCS#12 keystore holding the given PEM certificates as trusted entries.
fn trust_store(dir: &Path, name: &str, certs: &[(&str, &Path)]) -> PathBuf {
    let ks = dir.join(name);
    for (alias, pem) in certs {
        let import = ["-importcert", "-noprompt", "-alias", alias, "-file", s(pem)];
        ok("keytool", &[&import[..], &store(&ks)].concat());
    }
    ks
}

/// The code-signing PKI of step 1: `sign.p12` (key entry `signer` with the chain
/// signer ← CA) and the CA certificate, `code-ca.pem`.
fn code_signing(dir: &Path) -> (PathBuf, PathBuf) {
    let ks = dir.join("sign.p12");
    let ca = dir.join("code-ca.pem");
    let csr = dir.join("signer.csr");
    let signer = dir.join("signer.pem");
    let common = store(&ks);
    let key = |alias: &str, dn: &str, ext: &[&str]| {
        let mut a = vec![
            "-genkeypair",
            "-alias",
            alias,
            "-keyalg",
            "EC",
            "-groupname",
        ];
        a.extend(["secp256r1", "-dname", dn, "-validity", "30"]);
        a.extend_from_slice(ext);
        a.extend_from_slice(&common);
        ok("keytool", &a);
    };
    key(
        "ca",
        "CN=frostamp interop code-signing CA",
        &["-ext", "bc:c"],
    );
    key("signer", "CN=frostamp interop JAR signer", &[]);
    let run = |a: &[&str]| ok("keytool", &[a, &common[..]].concat());
    run(&["-certreq", "-alias", "signer", "-file", s(&csr)]);
    run(&[
        "-gencert",
        "-alias",
        "ca",
        "-infile",
        s(&csr),
        "-outfile",
        s(&signer),
        "-rfc",
        "-ext",
        "ku:c=digitalSignature",
        "-ext",
        "eku=codeSigning",
        "-validity",
        "30",
    ]);
    run(&["-exportcert", "-alias", "ca", "-rfc", "-file", s(&ca)]);
    let chain = dir.join("signer-chain.pem");
    let mut pem = std::fs::read(&signer).unwrap();
    pem.extend(std::fs::read(&ca).unwrap());
    std::fs::write(&chain, pem).unwrap();
    run(&[
        "-importcert",
        "-noprompt",
        "-alias",
        "signer",
        "-file",
        s(&chain),
    ]);
    (ks, ca)
}

/// A small JAR to sign.
fn unsigned_jar(dir: &Path) -> PathBuf {
    let content = dir.join("content");
    std::fs::create_dir_all(content.join("frostamp")).unwrap();
    std::fs::write(
        content.join("frostamp/hello.txt"),
        b"timestamped by frostamp\n",
    )
    .unwrap();
    let jar = dir.join("app.jar");
    ok(
        "jar",
        &["--create", "--file", s(&jar), "-C", s(&content), "frostamp"],
    );
    jar
}

/// `jarsigner -tsa URL -strict`: sign `jar` into `out` with the key of `sign`.
fn sign_jar(jar: &Path, out: &Path, sign: &Path, tsa: &str, tls_trust: &Path) -> Output {
    let trust = [
        &format!("-J-Djavax.net.ssl.trustStore={}", s(tls_trust)),
        &format!("-J-Djavax.net.ssl.trustStorePassword={PW}"),
        "-J-Djavax.net.ssl.trustStoreType=PKCS12",
    ];
    let rest = ["-tsa", tsa, "-signedjar", s(out), "-verbose", "-strict"];
    jdk(
        "jarsigner",
        &[&trust[..], &store(sign), &rest, &[s(jar), "signer"]].concat(),
    )
}

/// `jarsigner -verify -verbose -certs -strict` with `keystore`'s trust anchors.
fn verify_jar(jar: &Path, keystore: &Path) -> Output {
    let flags = ["-verify", "-verbose", "-certs", "-strict"];
    jdk(
        "jarsigner",
        &[&flags[..], &store(keystore), &[s(jar)]].concat(),
    )
}

/// A verification keystore `verify.p12` trusting the code-signing CA and the
/// cluster's development root.
fn verify_trust(st: &Setup) -> PathBuf {
    trust_store(
        &st.dir,
        "verify.p12",
        &[("code-ca", &st.code_ca), ("frostamp-dev-root", &st.root())],
    )
}

/// Asserts that `out` exited with `code`; its output.
fn exit_text(out: &Output, code: i32) -> String {
    let t = text(out);
    assert_eq!(out.status.code(), Some(code), "{t}");
    t
}

/// Bouncy Castle's check of `token` for `imprint` against `root`: asserts that it exits
/// with `code`; its output.
fn bc_check(token: &Path, root: &Path, imprint: &str, code: i32) -> String {
    exit_text(&tsp_check(&["check", s(token), s(root), imprint]), code)
}

/// What one cluster gives the Java side.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cluster: PathBuf,
    file: ClusterFile,
    tsa_url: String,
    tls_trust: PathBuf,
    sign: PathBuf,
    code_ca: PathBuf,
    jar: PathBuf,
}

impl Setup {
    fn root(&self) -> PathBuf {
        self.file.root.clone().unwrap()
    }
}

fn setup(suite: &str) -> Setup {
    // Compile first: a missing JDK fails before a cluster is started.
    tsp_check_cp();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let cluster = dir.join("cluster");
    let file = cluster_up_with(&cluster, suite);
    let node = &file.nodes[0];
    let root = file.root.clone().unwrap();
    let tls_trust = trust_store(&dir, "tls-trust.p12", &[("frostamp-dev-root", &root)]);
    let (sign, code_ca) = code_signing(&dir);
    let jar = unsigned_jar(&dir);
    let port = node.public.rsplit_once(':').unwrap().1;
    Setup {
        _tmp: tmp,
        tsa_url: format!("https://localhost:{port}/"),
        dir,
        cluster,
        file,
        tls_trust,
        sign,
        code_ca,
        jar,
    }
}

/// `frostamp verify` of a bare token for `imprint` (hex) against the cluster's root
/// and time servers: its output, after asserting success.
fn frostamp_verify(st: &Setup, token: &Path, imprint: &str) -> String {
    let out = Command::new(FROSTAMP)
        .args([
            "verify",
            s(token),
            "--digest",
            imprint,
            "--roots",
            s(&st.root()),
        ])
        .arg("--time-servers")
        .arg(st.cluster.join("time-servers.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

/// The token with one byte of its SignerInfo's signature flipped.
fn flip_signature_byte(token: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(token).unwrap();
    let sd: cms::signed_data::SignedData = ci.content.decode_as().unwrap();
    let sig = sd
        .signer_infos
        .0
        .get(0)
        .unwrap()
        .signature
        .as_bytes()
        .to_vec();
    let at: Vec<usize> = token
        .windows(sig.len())
        .enumerate()
        .filter(|(_, w)| *w == &sig[..])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the signature occurs once in the token");
    let mut bad = token.to_vec();
    bad[at[0] + sig.len() / 2] ^= 0x01;
    // Still well-formed DER, only the signature differs.
    let ci2 = cms::content_info::ContentInfo::from_der(&bad).unwrap();
    assert_eq!(ci2.to_der().unwrap(), bad);
    bad
}

/// `TspCheck extract`: the token in the signed JAR and the imprint it must carry.
fn extract_token(signed: &Path, out: &Path) -> String {
    let o = tsp_check(&["extract", s(signed), s(out)]);
    assert!(o.status.success(), "{}", text(&o));
    value(&text(&o), "imprint_hex").to_string()
}

#[test]
fn secp256k1_epoch_java_and_bouncy_castle_cannot_check_the_schnorr_token() {
    let st = setup("secp256k1");
    let _down = Down(&st.cluster);
    let d = &st.dir;
    let frost = frostamp::oid::frost_secp256k1_sha256().to_string();

    // Java's TLS client refuses the node without the root in its truststore: no
    // JAR, no request.
    let other = trust_store(d, "other-trust.p12", &[("code-ca", &st.code_ca)]);
    let refused = d.join("refused.jar");
    let out = sign_jar(&st.jar, &refused, &st.sign, &st.tsa_url, &other);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("PKIX path building failed"),
        "{}",
        text(&out)
    );
    assert!(!refused.exists());

    // With the root: jarsigner gets a token, cannot verify it and says
    // so (tsaChainNotValidated = 64 under -strict), and writes the JAR.
    let signed = d.join("signed.jar");
    let out = sign_jar(&st.jar, &signed, &st.sign, &st.tsa_url, &st.tls_trust);
    let t = text(&out);
    assert!(t.contains("requesting a signature timestamp"), "{t}");
    assert_eq!(out.status.code(), Some(64), "{t}");
    assert!(t.contains("jar signed, with signer errors."), "{t}");
    assert!(
        t.contains(&format!(
            "The TSA certificate chain is invalid. Reason: SHA256with{frost} Signature not available"
        )),
        "{t}"
    );

    // The token is frostamp's and valid: frostamp verify accepts it for the imprint
    // of the JAR signature it is attached to.
    let token = d.join("token.der");
    let imprint = extract_token(&signed, &token);
    let out = frostamp_verify(&st, &token, &imprint);
    assert!(out.contains("signature:  FROST(secp256k1, SHA-256)"));

    // Verification with the development root trusted: the JDK's JAR verifier throws
    // on the timestamp and drops the whole signature: the JAR counts as unsigned
    // (hasUnsignedEntry = 16).
    let trust = verify_trust(&st);
    let out = verify_jar(&signed, &trust);
    let t = exit_text(&out, 16);
    assert!(
        t.contains("Signature is either not parsable or not verifiable, and the jar will be treated as unsigned"),
        "{t}"
    );
    assert!(
        t.contains(&format!("Timestamp signature algorithm: SHA256with{frost}")),
        "{t}"
    );
    // Without -strict the same verification exits 0: only the warning says that the
    // JAR's signature was dropped.
    let out = jdk(
        "jarsigner",
        &[&["-verify"][..], &store(&trust), &[s(&signed)]].concat(),
    );
    let t = exit_text(&out, 0);
    assert!(t.contains("the jar will be treated as unsigned"), "{t}");

    // Bouncy Castle reads every field and refuses at the signature algorithm.
    let t = bc_check(&token, &st.root(), &imprint, 1);
    assert_eq!(value(&t, "signer_signature_alg"), frost);
    assert_eq!(value(&t, "imprint_hex"), imprint);
    assert!(
        t.contains(&format!(
            "REFUSED validate: java.lang.IllegalArgumentException: Unknown signature type requested: SHA256WITH{frost}"
        )),
        "{t}"
    );
    assert!(!t.contains("signature: valid"), "{t}");
}

#[test]
fn ed25519_epoch_jarsigner_and_bouncy_castle_verify_the_token() {
    let st = setup("ed25519");
    let _down = Down(&st.cluster);
    let d = &st.dir;

    // jarsigner checks the token it receives at signing, TSA chain included, against
    // the signing keystore (and cacerts): without the development root there, the
    // token's signature verifies but the chain does not (tsaChainNotValidated = 64).
    let unanchored = d.join("unanchored.jar");
    let out = sign_jar(&st.jar, &unanchored, &st.sign, &st.tsa_url, &st.tls_trust);
    let t = exit_text(&out, 64);
    assert!(t.contains(">>> TSA"), "{t}");
    assert!(
        t.contains("The TSA certificate chain is invalid. Reason: PKIX path building failed"),
        "{t}"
    );

    // With the development root trusted in the signing keystore: no severe warning.
    trust_store(d, "sign.p12", &[("frostamp-dev-root", &st.root())]);
    let signed = d.join("signed.jar");
    let out = sign_jar(&st.jar, &signed, &st.sign, &st.tsa_url, &st.tls_trust);
    let t = exit_text(&out, 0);
    assert!(t.contains("requesting a signature timestamp"), "{t}");
    assert!(t.contains("jar signed."), "{t}");
    assert!(!t.contains("with signer errors"), "{t}");
    assert!(!t.contains("Invalid TSA certificate chain"), "{t}");

    // -verify -strict with the development root (and the code-signing CA) trusted.
    let trust = verify_trust(&st);
    let out = verify_jar(&signed, &trust);
    let t = exit_text(&out, 0);
    assert!(t.contains("jar verified."), "{t}");
    assert!(!t.contains("with signer errors"), "{t}");
    assert!(
        t.contains("Timestamped by \"CN=frostamp TSA, O=frostamp\""),
        "{t}"
    );
    assert!(t.contains("Timestamp signature algorithm: Ed25519"), "{t}");
    assert!(!t.contains("Invalid TSA certificate chain"), "{t}");

    // Twin: without the development root the timestamp is not trusted
    // (tsaChainNotValidated = 64); the JAR signature itself still verifies.
    let no_root = trust_store(d, "verify-no-root.p12", &[("code-ca", &st.code_ca)]);
    let out = verify_jar(&signed, &no_root);
    let t = exit_text(&out, 64);
    assert!(t.contains("jar verified, with signer errors."), "{t}");
    assert!(
        t.contains("This jar contains entries whose TSA certificate chain is invalid. Reason: PKIX path building failed"),
        "{t}"
    );

    // The same token: frostamp verify and Bouncy Castle accept it, for the digest of
    // the JAR signature it is attached to.
    let token = d.join("token.der");
    let imprint = extract_token(&signed, &token);
    let ours = frostamp_verify(&st, &token, &imprint);
    assert!(ours.contains("signature:  Ed25519"), "{ours}");
    let t = bc_check(&token, &st.root(), &imprint, 0);
    assert_eq!(value(&t, "signer_signature_alg"), "1.3.101.112", "{t}");
    // RFC 8419 §3.1: SHA-512 with Ed25519.
    assert_eq!(
        value(&t, "signer_digest_alg"),
        "2.16.840.1.101.3.4.2.3",
        "{t}"
    );
    assert_eq!(value(&t, "imprint_hex"), imprint);
    assert_eq!(value(&t, "signature"), "valid");
    assert!(value(&t, "path").starts_with("valid to "), "{t}");
    assert_eq!(value(&t, "result"), "valid");

    // Twins: one byte of the signature flipped; another root as the anchor.
    let bad = d.join("flipped.der");
    std::fs::write(&bad, flip_signature_byte(&std::fs::read(&token).unwrap())).unwrap();
    let t = bc_check(&bad, &st.root(), &imprint, 1);
    assert!(t.contains("REFUSED validate: "), "{t}");
    assert!(!t.contains("signature: valid"), "{t}");
    let t = bc_check(&token, &st.code_ca, &imprint, 1);
    assert_eq!(value(&t, "signature"), "valid");
    assert!(t.contains("REFUSED path: "), "{t}");
}

//! The central store over TLS, against a real PostgreSQL server with `ssl = on` that refuses
//! unencrypted TCP (`hostssl` only), with a CA and a server certificate made by the test:
//! verify-full with the right CA carries a replay, require and prefer encrypt without a CA,
//! verify-ca accepts any name the CA signed; the wrong CA, the wrong host name, sslmode=disable
//! and a missing or unreadable sslrootcert are refused with the reason.

use crate::central::sensor_config;
use crate::common::*;
use crate::pg::PgCluster;
use bwacct::config::Postgres;
use bwacct::store::postgres::PgStore;
use std::path::{Path, PathBuf};

const PASSWORD: &str = "correct-horse";

/// A CA (its PEM written to `dir/name`) and a certificate for `localhost` it signed.
struct Pki {
    ca: PathBuf,
    cert_pem: String,
    key_pem: String,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("bwacct test CA {name}"));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.join(name);
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A server requiring TLS with `pki`'s certificate, and a database `bw` owned by `bw`.
fn tls_server(tag: &str, pki: &Pki) -> Option<PgCluster> {
    let pg = PgCluster::start(tag)?;
    pg.create_db("bw", "bw", PASSWORD);
    pg.require_tls(&pki.cert_pem, &pki.key_pem);
    Some(pg)
}

fn conninfo(pg: &PgCluster, host: &str, tls: &str) -> String {
    format!(
        "host={host} port={} user=bw dbname=bw password={PASSWORD} {tls}",
        pg.port
    )
}

fn open(conninfo: String) -> Result<PgStore, String> {
    PgStore::open(&Postgres {
        conninfo,
        password_file: None,
    })
    .map_err(|e| e.to_string())
}

/// How many of bwacct's connections to the server are encrypted.
fn encrypted_sessions(pg: &PgCluster) -> String {
    pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'bwacct' AND ssl",
    )
}

#[test]
fn a_replay_reaches_a_server_verified_by_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path(), "ca.pem");
    let Some(pg) = tls_server("tls-replay", &pki) else {
        return;
    };
    let capture = data("multiday-eth-3k.pcap");
    let tls = format!("sslmode=verify-full sslrootcert={}", pki.ca.display());
    let cfg = sensor_config(dir.path(), "dom0-a", &conninfo(&pg, "localhost", &tls), "");
    let out = bwacct()
        .arg("-c")
        .arg(&cfg)
        .arg("replay")
        .arg(&capture)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    let batches: f64 = pg
        .psql("bw", "SELECT count(*) FROM batches")
        .parse()
        .unwrap();
    assert_eq!(
        batches,
        summary(&out.stdout)["intervals"],
        "every interval once"
    );
    // the report reads the central store over the same verified connection
    let rows = report_rows(&cfg, &["--from", "1970-01-01", "--to", "2200-01-01"]);
    let diffs = diff_truth(&rows, &truth_of(&capture));
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn tls_modes_verify_as_libpq_does_and_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path(), "ca.pem");
    let other = make_pki(dir.path(), "other-ca.pem");
    let Some(pg) = tls_server("tls-modes", &pki) else {
        return;
    };
    let ca = pki.ca.display();

    // encrypted, the certificate checked, the name not (verify-ca) or not at all (require,
    // prefer: the server refuses plain TCP, so these sessions are encrypted)
    for (host, tls) in [
        ("localhost", format!("sslmode=verify-full sslrootcert={ca}")),
        ("127.0.0.1", format!("sslmode=verify-ca sslrootcert={ca}")),
        ("127.0.0.1", "sslmode=require".to_owned()),
        ("127.0.0.1", String::new()),
    ] {
        let store = open(conninfo(&pg, host, &tls)).unwrap_or_else(|e| panic!("{tls}: {e}"));
        assert_eq!(encrypted_sessions(&pg), "1", "{tls}");
        drop(store);
    }

    // SCRAM bound to the TLS session (SCRAM-SHA-256-PLUS, tls-server-end-point)
    open(conninfo(
        &pg,
        "localhost",
        &format!("sslmode=verify-full sslrootcert={ca} channel_binding=require"),
    ))
    .unwrap();

    // as libpq: no TLS over the local socket, whatever sslmode says
    open(format!("{} sslmode=verify-full", pg.socket_conninfo("bw"))).unwrap();

    // a certificate the CA did not sign
    let wrong_ca = format!("sslmode=verify-full sslrootcert={}", other.ca.display());
    let e = open(conninfo(&pg, "localhost", &wrong_ca)).err().unwrap();
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    // require with a CA file checks the chain too (libpq's rule)
    let wrong_ca = format!("sslmode=require sslrootcert={}", other.ca.display());
    let e = open(conninfo(&pg, "127.0.0.1", &wrong_ca)).err().unwrap();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // the right CA, but the certificate names localhost, not 127.0.0.1
    let e = open(conninfo(
        &pg,
        "127.0.0.1",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    ))
    .err()
    .unwrap();
    assert!(
        e.contains("invalid peer certificate: certificate not valid for name \"127.0.0.1\""),
        "{e}"
    );
    // no TLS to a server that requires it
    let e = open(conninfo(&pg, "127.0.0.1", "sslmode=disable"))
        .err()
        .unwrap();
    assert!(e.contains("no encryption"), "{e}");
    // the CA file missing, not PEM, or absent for a verifying mode
    let missing = dir.path().join("missing.pem");
    let e = open(conninfo(
        &pg,
        "localhost",
        &format!("sslmode=verify-full sslrootcert={}", missing.display()),
    ))
    .err()
    .unwrap();
    assert!(
        e.contains(&format!("sslrootcert {}: cannot read", missing.display())),
        "{e}"
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let e = open(conninfo(
        &pg,
        "localhost",
        &format!("sslmode=verify-ca sslrootcert={}", garbage.display()),
    ))
    .err()
    .unwrap();
    assert!(
        e.contains(&format!(
            "sslrootcert {}: holds no usable CA certificate",
            garbage.display()
        )),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    let e = open(conninfo(&pg, "localhost", "sslmode=verify-full"))
        .err()
        .unwrap();
    assert!(e.contains("sslmode=verify-full needs the CA that signed the server's certificate: add sslrootcert=FILE"), "{e}");
}

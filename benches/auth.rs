//! What access control costs a request: a Basic login checked by argon2 (the first request, or
//! a wrong password), the same login once verified (every later request of a page and its
//! images), a bearer token, and a page's worth of names looked up in what is known.

use axum::http::HeaderValue;
use base64::Engine;
use bwacct::config;
use bwacct::customer::Customers;
use bwacct::names::Names;
use bwacct::usage::Host;
use bwacct::web::auth::{hash_password, Access, Verdict};
use criterion::{criterion_group, criterion_main, Criterion};
use sha2::{Digest, Sha256};
use std::sync::Arc;

fn basic(user: &str, password: &str) -> HeaderValue {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {b}")).unwrap()
}

fn auth(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = "0123456789abcdef0123456789abcdef";
    let access = Access::new(&config::Access {
        users: vec![("alice".into(), hash_password("a long passphrase").unwrap())],
        tokens: vec![Sha256::digest(token.as_bytes()).into()],
        metrics_tokens: Vec::new(),
    })
    .unwrap();
    let right = basic("alice", "a long passphrase");
    let wrong = basic("alice", "not the passphrase");
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let mut g = c.benchmark_group("auth");
    g.bench_function("basic, argon2 verification (a wrong password)", |b| {
        b.iter(|| {
            let v = rt.block_on(access.check(Some(&wrong), false));
            assert!(matches!(v, Verdict::Denied { .. }));
        })
    });
    assert_eq!(
        rt.block_on(access.check(Some(&right), false)),
        Verdict::Allowed
    );
    g.bench_function("basic, verified before", |b| {
        b.iter(|| {
            assert_eq!(
                rt.block_on(access.check(Some(&right), false)),
                Verdict::Allowed
            )
        })
    });
    g.bench_function("bearer token", |b| {
        b.iter(|| {
            assert_eq!(
                rt.block_on(access.check(Some(&bearer), false)),
                Verdict::Allowed
            )
        })
    });
    g.finish();

    // 100 rows of the top-talkers page: 50 with static names, 50 without (reverse DNS off).
    let settings = config::Names {
        fixed: (0..50u8)
            .map(|i| ([198, 51, 100, i].into(), format!("host{i}.example")))
            .collect(),
        ..Default::default()
    };
    let names = Names::start(&settings, Arc::new(Customers::default())).unwrap();
    let hosts: Vec<Host> = (0..100u8)
        .map(|i| Host::Addr([198, 51, 100, i].into()))
        .collect();
    c.bench_function("names of a 100-row page", |b| {
        b.iter(|| assert_eq!(names.known(&hosts).len(), 50))
    });
}

criterion_group! {
    name = benches;
    // No plots: criterion's plotting backend has no font on a bare server.
    config = Criterion::default().without_plots();
    targets = auth
}
criterion_main!(benches);
